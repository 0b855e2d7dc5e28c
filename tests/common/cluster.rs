//! Cluster harness: the real `dm-master`, `dm-worker` and `dmctl` binaries on free loopback
//! ports, each stopped by its PID on drop (and tied to the test process with
//! PR_SET_PDEATHSIG through the same keeper thread as the MariaDB servers).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, spawn_child};

pub struct Proc {
    pub child: Option<Child>,
    pub log: PathBuf,
    pub name: String,
}

impl Proc {
    pub fn spawn(bin: &str, args: &[String], log: PathBuf, name: &str) -> Proc {
        Self::spawn_env(bin, args, &[], log, name)
    }

    /// [`Proc::spawn`] with extra environment variables.
    pub fn spawn_env(
        bin: &str,
        args: &[String],
        env: &[(&str, &str)],
        log: PathBuf,
        name: &str,
    ) -> Proc {
        Self::spawn_env_in(bin, args, env, log, name, None)
    }

    /// [`Proc::spawn_env`] in working directory `cwd` (a DM deployment's own directory:
    /// relative paths in task files resolve there).
    pub fn spawn_env_in(
        bin: &str,
        args: &[String],
        env: &[(&str, &str)],
        log: PathBuf,
        name: &str,
        cwd: Option<&Path>,
    ) -> Proc {
        let out = std::fs::File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let mut cmd = Command::new(bin);
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = spawn_child(cmd).unwrap_or_else(|e| panic!("start {bin}: {e}"));
        Proc {
            child: Some(child),
            log,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Whether the process has ended (reaped here); a stopped or killed one counts.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// SIGKILL (a crash).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Master {
    pub proc: Proc,
    pub addr: String,
    pub data_dir: PathBuf,
    with_worker: bool,
}

pub fn wait_port(addr: &str, timeout: Duration) {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr} after {timeout:?}");
}

impl Master {
    pub fn start(dir: &Path, with_worker: bool) -> Master {
        let addr = format!("127.0.0.1:{}", free_port());
        Self::start_at(dir, &addr, with_worker)
    }

    pub fn start_at(dir: &Path, addr: &str, with_worker: bool) -> Master {
        let data_dir = dir.join("master-data");
        let mut args = vec![
            "--master-addr".to_string(),
            addr.to_string(),
            "--data-dir".to_string(),
            data_dir.display().to_string(),
        ];
        if with_worker {
            args.push("--with-worker".into());
        }
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let proc = Proc::spawn(
            env!("CARGO_BIN_EXE_dm-master"),
            &args,
            dir.join(format!("master-{n}.log")),
            "dm-master",
        );
        wait_port(addr, Duration::from_secs(20));
        Master {
            proc,
            addr: addr.to_string(),
            data_dir,
            with_worker,
        }
    }

    /// Stops the process and starts it again on the same address and data dir.
    pub fn restart(&mut self, dir: &Path) {
        self.proc.stop();
        let m = Master::start_at(dir, &self.addr, self.with_worker);
        *self = m;
    }
}

pub struct WorkerProc {
    pub proc: Proc,
    pub name: String,
    pub addr: String,
    pub join: String,
}

impl WorkerProc {
    pub fn start(dir: &Path, name: &str, join: &str) -> WorkerProc {
        let addr = format!("127.0.0.1:{}", free_port());
        Self::start_at(dir, name, &addr, join)
    }

    pub fn start_at(dir: &Path, name: &str, addr: &str, join: &str) -> WorkerProc {
        Self::start_env(dir, name, addr, join, &[])
    }

    /// [`WorkerProc::start_at`] with extra environment variables (e.g. `DMRS_FAILPOINTS`).
    pub fn start_env(
        dir: &Path,
        name: &str,
        addr: &str,
        join: &str,
        env: &[(&str, &str)],
    ) -> WorkerProc {
        Self::start_env_in(dir, name, addr, join, env, None)
    }

    /// [`WorkerProc::start_env`] in working directory `cwd`.
    pub fn start_env_in(
        dir: &Path,
        name: &str,
        addr: &str,
        join: &str,
        env: &[(&str, &str)],
        cwd: Option<&Path>,
    ) -> WorkerProc {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let proc = Proc::spawn_env_in(
            env!("CARGO_BIN_EXE_dm-worker"),
            &[
                "--name".into(),
                name.into(),
                "--worker-addr".into(),
                addr.into(),
                "--join".into(),
                join.into(),
            ],
            env,
            dir.join(format!("worker-{name}-{n}.log")),
            name,
            cwd,
        );
        wait_port(addr, Duration::from_secs(20));
        WorkerProc {
            proc,
            name: name.to_string(),
            addr: addr.to_string(),
            join: join.to_string(),
        }
    }

    pub fn restart(&mut self, dir: &Path) {
        self.proc.stop();
        *self = WorkerProc::start_at(
            dir,
            &self.name.clone(),
            &self.addr.clone(),
            &self.join.clone(),
        );
    }
}

/// A source file for a MariaDB on 127.0.0.1:`port` (user root, no password).
pub fn source_yaml(source_id: &str, port: u16) -> String {
    format!(
        "source-id: {source_id}\nfrom:\n  host: 127.0.0.1\n  port: {port}\n  user: root\n  password: ''\n"
    )
}

/// Writes [`source_yaml`] to `dir/source.yaml` and returns the path.
pub fn write_source(dir: &Path, source_id: &str, port: u16) -> PathBuf {
    let path = dir.join("source.yaml");
    std::fs::write(&path, source_yaml(source_id, port)).expect("write source.yaml");
    path
}

pub struct CtlOut {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CtlOut {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "dmctl output is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `dmctl --master-addr ADDR args...`.
pub fn dmctl(addr: &str, args: &[&str]) -> CtlOut {
    let out = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .arg("--master-addr")
        .arg(addr)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dmctl");
    CtlOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Asserts that a dmctl command succeeded, naming it and its output otherwise.
pub fn ok(out: &CtlOut, what: &str) {
    assert_eq!(out.code, 0, "{what}: {}{}", out.stdout, out.stderr);
}

/// A dm-master and one dm-worker (`worker-a`) with the source `mariadb-01` bound to it, in a
/// temp dir. A failing test shows the end of both logs on drop (`DMRS_KEEP_LOGS` keeps the dir).
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub master: Master,
    pub worker: WorkerProc,
    pub addr: String,
}

impl Cluster {
    /// Starts the cluster for an upstream on 127.0.0.1:`up_port`, the worker with `env`, and
    /// waits until the source is bound.
    pub fn start(up_port: u16, env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let master = Master::start(dir.path(), false);
        let waddr = format!("127.0.0.1:{}", free_port());
        let worker = WorkerProc::start_env(dir.path(), "worker-a", &waddr, &master.addr, env);
        let addr = master.addr.clone();
        let source = write_source(dir.path(), "mariadb-01", up_port);
        create_source_bound(&addr, &source);
        Cluster {
            dir,
            master,
            worker,
            addr,
        }
    }
}

/// `operate-source create FILE` on a cluster with one worker, then waits (30 s at most)
/// until the worker is bound to it.
pub fn create_source_bound(addr: &str, file: &Path) {
    ok(
        &dmctl(
            addr,
            &["operate-source", "create", &file.display().to_string()],
        ),
        "operate-source",
    );
    let t = Instant::now();
    loop {
        let lm = dmctl(addr, &["list-member", "--worker"]).json();
        if lm["members"][0]["worker"]["workers"][0]["stage"] == "bound" {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "never bound: {lm:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// For a test's Drop while it panics: keeps `dir` when `DMRS_KEEP_LOGS` is set and prints the
/// last `lines` lines of each (name, log text).
pub fn report_logs(dir: &mut tempfile::TempDir, logs: &[(&str, String)], lines: usize) {
    if !std::thread::panicking() {
        return;
    }
    if std::env::var_os("DMRS_KEEP_LOGS").is_some() {
        let kept = std::mem::replace(dir, tempfile::tempdir().unwrap());
        eprintln!("logs kept in {}", kept.keep().display());
    }
    for (name, text) in logs {
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        eprintln!("---- {name} log (last lines) ----");
        for l in tail.into_iter().rev() {
            eprintln!("{l}");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = [
                ("worker", self.worker.proc.log_text()),
                ("master", self.master.proc.log_text()),
            ];
            report_logs(&mut self.dir, &logs, 60);
        }
    }
}
