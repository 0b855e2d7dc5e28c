//! The real dmctl binary: version banner, encrypt/decrypt, DM's single-dash flags, help, and
//! `check-task --offline` agreeing with the config model over the whole DM corpus.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dmctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(args)
        .env_remove("DM_MASTER_ADDR")
        .output()
        .expect("run dmctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn version_banner_has_dm_fields() {
    let o = dmctl(&["-V"]);
    assert!(o.status.success());
    let out = stdout(&o);
    let keys: Vec<&str> = out.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "Release Version",
            "Git Commit Hash",
            "Git Branch",
            "UTC Build Time",
            "Rust Version"
        ]
    );
    assert!(out.contains("rustc 1."), "{out}");
}

#[test]
fn encrypt_differs_each_run_and_decrypts_back() {
    let a = stdout(&dmctl(&["-encrypt", "123456"])).trim().to_string();
    let b = stdout(&dmctl(&["--encrypt", "123456"])).trim().to_string();
    let c = stdout(&dmctl(&["encrypt", "123456"])).trim().to_string();
    assert!(!a.is_empty() && a != b && b != c && a != c);
    for cipher in [&a, &b, &c] {
        assert_eq!(stdout(&dmctl(&["-decrypt", cipher])).trim(), "123456");
        assert_eq!(stdout(&dmctl(&["decrypt", cipher])).trim(), "123456");
    }
    assert_eq!(
        stdout(&dmctl(&["decrypt", "Up8156jArvIPymkVC+5LxkAT6rek"])).trim(),
        "1234"
    );
}

#[test]
fn corrupt_ciphertext_fails_with_dm_code() {
    let o = dmctl(&["decrypt", "%%%not-base64"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("[code=11050]"), "{}", stderr(&o));
    let o = dmctl(&["-decrypt", "YWJj"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("[code=11047]"));
}

#[test]
fn help_lists_commands_and_explains_one() {
    let o = dmctl(&["help"]);
    assert!(o.status.success());
    for cmd in ["encrypt", "decrypt", "check-task"] {
        assert!(stdout(&o).contains(cmd), "{}", stdout(&o));
    }
    let o = dmctl(&["help", "check-task"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("--offline"));
    let o = dmctl(&["no-such-command"]);
    assert_eq!(o.status.code(), Some(2));
}

fn corpus(sub: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/dm-corpus")
        .join(sub);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    v.sort();
    v
}

#[test]
fn check_task_offline_accepts_the_valid_corpus() {
    let mut files = corpus("tasks-valid");
    files.extend(corpus("sources-valid"));
    let args: Vec<String> = ["-master-addr", "127.0.0.1:1", "check-task", "--offline"]
        .iter()
        .map(|s| s.to_string())
        .chain(files.iter().map(|p| p.display().to_string()))
        .collect();
    let o = Command::new(env!("CARGO_BIN_EXE_dmctl"))
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(
        stdout(&o).lines().filter(|l| l.contains(": ok: ")).count(),
        files.len()
    );
}

#[test]
fn check_task_offline_rejects_each_invalid_file_with_its_code() {
    for f in corpus("invalid") {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let want = name.split('-').next().unwrap();
        let o = dmctl(&["check-task", "--offline", &f.display().to_string()]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: {out}");
        assert!(lines[0].starts_with(&f.display().to_string()), "{out}");
        assert!(
            lines[0].contains(&format!("[code={want}]")),
            "{name}: {out}"
        );
        let lib = dm_rs::config::load_task_file(&f).unwrap_err().to_string();
        assert_eq!(lines[0], lib);
    }
}

#[test]
fn check_task_against_an_unreachable_master_fails_clearly() {
    let task = corpus("tasks-valid").into_iter().next().unwrap();
    let o = dmctl(&[
        "--master-addr",
        "127.0.0.1:1",
        "check-task",
        &task.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("can not connect to master 127.0.0.1:1"),
        "{}",
        stderr(&o)
    );
    let o = dmctl(&["check-task", &task.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--master-addr"), "{}", stderr(&o));
}
