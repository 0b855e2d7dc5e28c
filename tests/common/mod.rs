//! Test harness shared by all integration tests: throwaway MariaDB servers on free loopback ports.
//!
//! [`MariaDb::upstream`] starts a `mariadbd` from Debian's `mariadb-server` with a fresh data dir,
//! `log_bin`, `binlog_format=ROW`, `binlog_row_image=FULL`, `binlog_row_metadata=FULL` and the given
//! `server_id`; [`MariaDb::downstream`] starts a plain one. Both listen on 127.0.0.1 only, with
//! `root` and no password. Dropping the value stops the server by its PID (also while a test
//! panics) and removes the data dir; the server is also tied to the spawning thread with
//! `PR_SET_PDEATHSIG`, so a killed test binary leaves no mariadbd behind. A test that needs
//! MariaDB and cannot find it fails with a message saying what to install.
//!
//! The system tables are installed once per MariaDB version into a template data dir under
//! `target/tmp` and copied for each server. Servers run with `innodb_use_native_aio=0`: the
//! kernel's AIO contexts (`fs.aio-max-nr`) are shared by every container on a host, and a host
//! that has used them up fails InnoDB's start.
//!
//! [`MariaDb::start_with_args`] starts either kind with extra server options; [`tls`] makes a
//! throwaway CA with server and client certificates for a TLS server, e.g.
//! `let certs = tls::TestCerts::generate(); let db = MariaDb::upstream_tls(1, &certs);` and
//! `DbConfig { security: Some(certs.security_ca_only()), .. }` on the client side.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "MariaDB is needed for this test: install it with `apt-get install -y mariadb-server` (Debian), which provides mariadbd and mariadb-install-db";

fn find(names: &[&str]) -> PathBuf {
    for n in names {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let p = Path::new(dir).join(n);
            if p.is_file() {
                return p;
            }
        }
        if let Ok(out) = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {n}"))
            .output()
            && out.status.success()
        {
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !s.is_empty() {
                return PathBuf::from(s);
            }
        }
    }
    panic!("{INSTALL_HINT} (looked for {names:?})");
}

/// The child gets SIGKILL when the thread that spawned it (the keeper) ends with the process.
fn with_parent_death_signal(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// An upstream and a downstream that the running tests of one file share.
pub struct SharedPair {
    pub up: MariaDb,
    pub down: MariaDb,
}

/// The pair the running tests of this test binary share: started by the first caller,
/// stopped (and its data dirs removed) when the last holder drops it.
pub fn shared_pair(server_id: u32) -> std::sync::Arc<SharedPair> {
    use std::sync::{Arc, Mutex, Weak};
    static PAIR: Mutex<Weak<SharedPair>> = Mutex::new(Weak::new());
    let mut slot = PAIR.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = slot.upgrade() {
        return p;
    }
    let (up, down) = MariaDb::pair(server_id);
    let p = Arc::new(SharedPair { up, down });
    *slot = Arc::downgrade(&p);
    p
}

pub mod check;
pub mod cluster;
pub mod proxy;
pub mod sql;
pub mod tls;

/// Spawns a child tied to the test process (PR_SET_PDEATHSIG from the keeper thread).
pub fn spawn_child(mut cmd: Command) -> std::io::Result<Child> {
    with_parent_death_signal(&mut cmd);
    spawn_from_keeper(cmd)
}

type SpawnRequest = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` from one thread that lives as long as the test process. `PR_SET_PDEATHSIG`
/// fires when the *thread* that spawned a child ends, so children are spawned there and survive
/// the (short-lived) test threads, yet die with the test binary.
fn spawn_from_keeper(cmd: Command) -> std::io::Result<Child> {
    static KEEPER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<SpawnRequest>>> =
        std::sync::OnceLock::new();
    let tx = KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
            // The sender lives in a static, so this loop never ends while the process runs.
        });
        std::sync::Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = std::sync::mpsc::channel();
    tx.lock()
        .map_err(|_| std::io::Error::other("spawner lock poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

/// A free TCP port on 127.0.0.1 (the OS picks it; the socket is closed before use).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A data dir with MariaDB's system tables, made once by `mariadb-install-db` and kept under
/// cargo's target dir (`CARGO_TARGET_TMPDIR`), named by the server's version; every server starts
/// from a copy of it. One install per version instead of one per server: faster, and a bootstrap
/// that fails (it has, under load) fails once, with its error log in the message, and is retried.
fn template_data_dir() -> Result<PathBuf, String> {
    static TEMPLATE: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut guard = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.as_ref() {
        return Ok(p.clone());
    }
    let mariadbd = find(&["mariadbd", "mysqld"]);
    let version = Command::new(&mariadbd)
        .arg("--version")
        .output()
        .map_err(|e| format!("run {} --version: {e}", mariadbd.display()))?;
    let version: String = String::from_utf8_lossy(&version.stdout)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let is_root = unsafe { libc::geteuid() } == 0;
    let target = root.join(format!(
        "mariadb-template-{}-{}",
        if is_root { "root" } else { "user" },
        &version[..version.len().min(100)]
    ));
    if target.join("data").join("mysql").is_dir() {
        *guard = Some(target.join("data"));
        return Ok(target.join("data"));
    }
    let mut last_err = String::new();
    for _ in 0..3 {
        match install_template(&root) {
            Ok(made) => {
                // Another test binary may have made it meanwhile: then keep theirs.
                if std::fs::rename(made.path(), &target).is_err()
                    && !target.join("data").join("mysql").is_dir()
                {
                    last_err = format!("could not move the template to {}", target.display());
                    continue;
                }
                *guard = Some(target.join("data"));
                return Ok(target.join("data"));
            }
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

fn install_template(root: &Path) -> Result<tempfile::TempDir, String> {
    let install_db = find(&["mariadb-install-db", "mysql_install_db"]);
    std::fs::create_dir_all(root).map_err(|e| format!("create {}: {e}", root.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("mariadb-install-")
        .tempdir_in(root)
        .map_err(|e| e.to_string())?;
    let d = dir.path();
    let mut cnf = format!(
        "[mariadbd]\ndatadir={data}\nsocket={d}/mariadb.sock\npid-file={d}/mariadb.pid\nlog_error={d}/error.log\nskip-networking\ninnodb_buffer_pool_size=128M\ninnodb_log_file_size=64M\ninnodb_use_native_aio=0\n",
        data = d.join("data").display(),
        d = d.display(),
    );
    if unsafe { libc::geteuid() } == 0 {
        cnf.push_str("user=root\n");
    }
    std::fs::write(d.join("my.cnf"), cnf).map_err(|e| e.to_string())?;
    let mut install = Command::new(&install_db);
    install
        .arg(format!("--defaults-file={}", d.join("my.cnf").display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    with_parent_death_signal(&mut install);
    let out = spawn_from_keeper(install)
        .and_then(|c| c.wait_with_output())
        .map_err(|e| format!("run {}: {e}", install_db.display()))?;
    if !out.status.success() {
        let log = std::fs::read_to_string(d.join("error.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        return Err(format!(
            "mariadb-install-db failed: {}{}\nerror.log (last lines):\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(dir)
}

/// `cp -a from to` (the copy keeps modes and owners).
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| format!("run cp: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cp -a {} {}: {}",
            from.display(),
            to.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A running throwaway MariaDB server.
pub struct MariaDb {
    child: Option<Child>,
    pub port: u16,
    pub server_id: u32,
    pub dir: tempfile::TempDir,
}

impl MariaDb {
    /// An upstream: binary log on, ROW format, FULL row image and metadata.
    pub fn upstream(server_id: u32) -> MariaDb {
        Self::start(server_id, true)
    }

    /// An upstream (`server_id`) and a downstream, started side by side.
    pub fn pair(server_id: u32) -> (MariaDb, MariaDb) {
        std::thread::scope(|s| {
            let up = s.spawn(|| MariaDb::upstream(server_id));
            let down = s.spawn(MariaDb::downstream);
            (up.join().unwrap(), down.join().unwrap())
        })
    }

    /// A downstream: no binary log.
    pub fn downstream() -> MariaDb {
        Self::start(0, false)
    }

    /// An upstream (`binlog`) or downstream with extra server options, each `name=value` or
    /// `--name=value` (e.g. `--ssl-ca=/tmp/ca.pem`). They go into the server's my.cnf, so
    /// [`MariaDb::start_again`] keeps them.
    pub fn start_with_args(server_id: u32, binlog: bool, args: &[String]) -> MariaDb {
        Self::start_inner(server_id, binlog, args)
    }

    /// An upstream serving TLS with `certs` (clients may still connect without TLS unless their
    /// user is created `REQUIRE SSL` / `REQUIRE X509`).
    pub fn upstream_tls(server_id: u32, certs: &tls::TestCerts) -> MariaDb {
        Self::start_inner(server_id, true, &certs.server_args())
    }

    /// A downstream serving TLS with `certs`.
    pub fn downstream_tls(certs: &tls::TestCerts) -> MariaDb {
        Self::start_inner(0, false, &certs.server_args())
    }

    fn start(server_id: u32, binlog: bool) -> MariaDb {
        Self::start_inner(server_id, binlog, &[])
    }

    fn start_inner(server_id: u32, binlog: bool, args: &[String]) -> MariaDb {
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(server_id, binlog, args) {
                Ok(db) => return db,
                Err(e) => last_err = e,
            }
        }
        panic!("could not start mariadbd: {last_err}");
    }

    fn try_start(server_id: u32, binlog: bool, args: &[String]) -> Result<MariaDb, String> {
        let mariadbd = find(&["mariadbd", "mysqld"]);
        let dir = tempfile::Builder::new()
            .prefix("dmrs-mariadb-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path();
        let port = free_port();
        let is_root = unsafe { libc::geteuid() } == 0;
        let mut cnf = format!(
            "[mariadbd]\ndatadir={data}\nport={port}\nbind-address=127.0.0.1\nsocket={d}/mariadb.sock\npid-file={d}/mariadb.pid\nlog_error={d}/error.log\nskip-name-resolve\ninnodb_buffer_pool_size=128M\ninnodb_log_file_size=64M\ninnodb_use_native_aio=0\nmax_connections=500\ninit-file={d}/init.sql\n",
            data = d.join("data").display(),
            d = d.display(),
        );
        if is_root {
            cnf.push_str("user=root\n");
        }
        if binlog {
            cnf.push_str(&format!(
                "server_id={server_id}\nlog_bin={d}/data/mariadb-bin\nbinlog_format=ROW\nbinlog_row_image=FULL\nbinlog_row_metadata=FULL\n",
                d = d.display()
            ));
        } else {
            cnf.push_str("server_id=9999\n");
        }
        for a in args {
            cnf.push_str(a.trim_start_matches("--"));
            cnf.push('\n');
        }
        std::fs::write(d.join("my.cnf"), cnf).map_err(|e| e.to_string())?;
        std::fs::write(
            d.join("init.sql"),
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';\nGRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n",
        )
        .map_err(|e| e.to_string())?;
        let defaults = format!("--defaults-file={}", d.join("my.cnf").display());
        copy_dir(&template_data_dir()?, &d.join("data"))?;
        let mut cmd = Command::new(&mariadbd);
        cmd.arg(&defaults)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        with_parent_death_signal(&mut cmd);
        let child = spawn_from_keeper(cmd).map_err(|e| format!("spawn mariadbd: {e}"))?;
        let mut db = MariaDb {
            child: Some(child),
            port,
            server_id,
            dir,
        };
        db.wait_ready()?;
        Ok(db)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "mariadbd exited with {status}: {}",
                    self.error_log()
                ));
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.dir.path().join("mariadb.pid").exists()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "mariadbd not ready after 60 s: {}",
            self.error_log()
        ))
    }

    /// The tail of the server's error log, for failure messages.
    pub fn error_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// A mysql_async connection URL for root.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// Starts the server again after [`MariaDb::stop`], same data dir and port.
    pub fn start_again(&mut self) {
        let mariadbd = find(&["mariadbd", "mysqld"]);
        let defaults = format!(
            "--defaults-file={}",
            self.dir.path().join("my.cnf").display()
        );
        let mut cmd = Command::new(&mariadbd);
        cmd.arg(&defaults)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        with_parent_death_signal(&mut cmd);
        self.child = Some(spawn_from_keeper(cmd).expect("spawn mariadbd"));
        self.wait_ready().expect("mariadbd restarts");
    }

    /// Stops the server by its PID: SIGTERM, then SIGKILL after 20 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True while a process with this PID exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
