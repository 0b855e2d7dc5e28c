//! Bad input gets a clear error with a DM code, never a panic.

use dm_rs::config::{self, code};

const BASIC: &str = "name: t\ntask-mode: incremental\ntarget-database:\n  host: 127.0.0.1\n  port: 3306\n  user: root\n  password: PASSWORD\nmysql-instances:\n  - source-id: s1\n    meta:\n      binlog-name: mariadb-bin.000001\n      binlog-pos: 4\n";

fn task(text: &str) -> Result<config::Loaded<config::TaskConfig>, config::ConfigError> {
    config::parse_task(text.as_bytes())
}

#[test]
fn the_basic_task_loads() {
    let t = task(&BASIC.replace("PASSWORD", "secret")).unwrap();
    assert_eq!(t.config.name, "t");
    assert_eq!(t.config.meta_schema, "dm_meta");
    let inst = t.config.instances().next().unwrap();
    assert_eq!(inst.syncer.as_ref().unwrap().worker_count, 16);
    assert_eq!(inst.loader.as_ref().unwrap().dir, "./dumped_data.t");
}

#[test]
fn empty_file_is_a_missing_name() {
    for text in ["", "\n\n", "# only a comment\n", "---\n"] {
        let e = task(text).unwrap_err();
        assert_eq!(e.code, code::NO_NAME, "{text:?}: {e}");
        assert!(e.to_string().contains("empty"), "{e}");
    }
}

#[test]
fn yaml_that_is_not_a_mapping() {
    for (text, kind) in [
        ("- a\n- b\n", "sequence"),
        ("just a string\n", "string"),
        ("42\n", "number"),
    ] {
        let e = task(text).unwrap_err();
        assert_eq!(e.code, code::YAML, "{e}");
        assert!(e.to_string().contains(kind), "{e}");
    }
}

#[test]
fn broken_yaml_syntax_names_the_line() {
    let e = task("name: t\ntask-mode: [all\n").unwrap_err();
    assert_eq!(e.code, code::YAML);
    assert!(e.pos.is_some(), "{e}");
}

#[test]
fn wrong_value_types_name_the_place() {
    let text = BASIC
        .replace("PASSWORD", "x")
        .replace("port: 3306", "port: not-a-port");
    let e = task(&text).unwrap_err();
    assert_eq!(e.code, code::YAML);
    assert_eq!(e.pos.map(|p| p.line), Some(5), "{e}");
    assert!(e.to_string().contains("target-database.port"), "{e}");

    let e = task("name: t\ntask-mode: all\nmysql-instances: {a: 1}\n").unwrap_err();
    assert_eq!(e.code, code::YAML, "{e}");
    let e = task("name: [1, 2]\n").unwrap_err();
    assert_eq!(e.code, code::YAML, "{e}");
    let e = task("name: t\ncase-sensitive: maybe\n").unwrap_err();
    assert!(e.to_string().contains("case-sensitive"), "{e}");
}

#[test]
fn yaml_11_scalars_are_accepted_like_dm() {
    let text = BASIC.replace("PASSWORD", "123456") + "case-sensitive: yes\n";
    let t = task(&text).unwrap();
    assert!(t.config.case_sensitive);
    // A numeric password is a string to DM.
    assert_eq!(t.config.target_database.unwrap().password, "123456");
}

#[test]
fn a_10_mb_file_is_refused_without_parsing() {
    let mut text = BASIC.replace("PASSWORD", "x");
    text.push_str("# ");
    text.push_str(&"x".repeat(10 * 1024 * 1024));
    let e = task(&text).unwrap_err();
    assert_eq!(e.code, code::READ_FILE);
    assert!(e.to_string().contains("larger than"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    std::fs::write(&path, &text).unwrap();
    let e = config::load_task_file(&path).unwrap_err();
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
}

#[test]
fn invalid_utf8_names_the_line() {
    let mut bytes = b"name: t\ntask-mode: all\n".to_vec();
    bytes.extend_from_slice(&[b'x', 0xff, 0xfe, b'\n']);
    let e = config::parse_task(&bytes).unwrap_err();
    assert_eq!(e.code, code::READ_FILE);
    assert_eq!(e.pos.map(|p| p.line), Some(3), "{e}");
    assert!(e.to_string().contains("UTF-8"), "{e}");
}

#[test]
fn env_passwords_resolve_and_a_missing_one_is_an_error() {
    // SAFETY: these variable names are used by this test only.
    unsafe { std::env::set_var("DM_RS_TEST_DOWNSTREAM_PW", "s3cret") };
    let t = task(&BASIC.replace("PASSWORD", "${DM_RS_TEST_DOWNSTREAM_PW}")).unwrap();
    let db = t.config.target_database.as_ref().unwrap();
    assert_eq!(db.plain_password(), "s3cret");
    let shown = t.config.to_yaml_masked();
    assert!(
        !shown.contains("s3cret") && shown.contains("'******'"),
        "{shown}"
    );

    let e = task(&BASIC.replace("PASSWORD", "${DM_RS_TEST_SURELY_UNSET}")).unwrap_err();
    assert_eq!(e.code, code::PASSWORD);
    assert_eq!(e.pos.map(|p| p.line), Some(7), "{e}");
    assert!(
        e.to_string().contains("DM_RS_TEST_SURELY_UNSET is not set"),
        "{e}"
    );
}

#[test]
fn encrypted_and_plaintext_passwords_both_work_and_never_show() {
    let cipher = dm_rs::password::encrypt("hunter2").unwrap();
    let t = task(&BASIC.replace("PASSWORD", &cipher)).unwrap();
    assert_eq!(
        t.config.target_database.as_ref().unwrap().plain_password(),
        "hunter2"
    );
    let shown = t.config.to_yaml_masked();
    assert!(!shown.contains(&cipher) && !shown.contains("hunter2"));
    // A corrupt ciphertext is taken as plaintext, as DM's DecryptOrPlaintext does.
    let t = task(&BASIC.replace("PASSWORD", "Up8156jArvIPymkVC+5LxkAT6re")).unwrap();
    assert_eq!(
        t.config.target_database.unwrap().plain_password(),
        "Up8156jArvIPymkVC+5LxkAT6re"
    );
}

#[test]
fn corrupt_ciphertexts_have_dm_meanings() {
    use dm_rs::password::{CipherError, decrypt};
    assert!(matches!(decrypt("%%%"), Err(CipherError::Base64(_))));
    assert!(
        decrypt("%%%")
            .unwrap_err()
            .to_string()
            .starts_with("[code=11050]")
    );
    assert!(
        decrypt("YWJj")
            .unwrap_err()
            .to_string()
            .starts_with("[code=11047]")
    );
    let no_at = "QUFBQUFBQUFBQUFBQUFBQUJCQkI="; // 16 × 'A' then "BBBB"
    assert!(
        decrypt(no_at)
            .unwrap_err()
            .to_string()
            .starts_with("[code=11048]")
    );
}

#[test]
fn deep_nesting_and_alias_bombs_do_not_panic() {
    let deep = format!("name: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert!(task(&deep).is_err());
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    assert!(task(bomb).is_err());
}

#[test]
fn source_files_are_checked_too() {
    let ok = config::parse_source(
        b"source-id: s1\nfrom:\n  host: 127.0.0.1\n  user: root\n  password: ''\n",
    )
    .unwrap();
    assert_eq!(ok.config.from.port, 3306);
    assert!(ok.config.to_yaml_masked().contains("'******'"));
    let e = config::parse_source(b"from:\n  host: h\n").unwrap_err();
    assert_eq!(e.code, code::EMPTY_SOURCE_ID);
    let e = config::parse_source(b"source-id: s\nfrom: {host: h}\nflavour: mysql\n").unwrap_err();
    assert_eq!(e.code, code::YAML);
    assert!(e.to_string().contains("did you mean \"flavor\""), "{e}");
    let e = config::parse_source(b"source-id: s\nchecker: {backoff-max: soon}\n").unwrap_err();
    assert_eq!(e.pos.map(|p| p.line), Some(2), "{e}");
    assert_eq!(
        config::detect_kind(b"source-id: s\nfrom: {}\n"),
        config::Kind::Source
    );
    assert_eq!(config::detect_kind(BASIC.as_bytes()), config::Kind::Task);
}
