//! DM's configuration model: task files (`task.yaml`) and source files (`source.yaml`).
//!
//! Every task file goes through here — `dmctl check-task`, the master when it stores a task, the
//! worker when it runs one, and the reconciler when it diffs desired against live state — so the
//! rules are DM's own: the same keys and defaults, unknown keys refused (code 20003), DM's checks
//! in DM's order with DM's error codes. Each error also names the file, line and column.
//! Passwords may be DM ciphertext, plaintext or `${ENV}` references (resolved at load time); the
//! normalised YAML this module prints always shows them as `******`.
//!
//! - [`task`] / [`source`] — the two file kinds; [`db`] — connection settings (`target-database`,
//!   a source's `from`) and the one way to connect with them (timeout, keepalive, TLS).
//! - [`TaskConfig::unsupported`] / [`SourceConfig::unsupported`] — the keys dm-rs parses but
//!   cannot run yet; start-task and check-task refuse a task using them (parsing and
//!   `dmctl plan` still work).
//!
//! Apart from [`db::DbConfig::connect`] this module does no network I/O. It never prints a
//! password: `Debug` of every config shows `******`.

pub mod changes;
pub mod db;
pub mod error;
pub mod source;
pub mod task;
pub mod yaml;

use std::path::Path;

use serde::de::DeserializeOwned;

pub use db::{CONNECT_TIMEOUT, ConnectError, DbConfig, Security};
pub use error::{ConfigError, Pos, code};
pub use source::SourceConfig;
pub use task::TaskConfig;
use yaml::PosIndex;

/// A config that loaded and passed every check, with the warnings DM would log.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub config: T,
    pub warnings: Vec<String>,
}

/// What the task and source models have in common for loading.
trait Document: DeserializeOwned + Default {
    const WHAT: &'static str;
    fn adjust(&mut self, ix: &PosIndex, warnings: &mut Vec<String>) -> Result<(), ConfigError>;
    /// Password fields, as (YAML path, value) pairs, for `${ENV}` resolution.
    fn passwords(&mut self) -> Vec<(&'static str, &mut String)>;
}

impl Document for TaskConfig {
    const WHAT: &'static str = "task";
    fn adjust(&mut self, ix: &PosIndex, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        TaskConfig::adjust(self, ix, warnings)
    }
    fn passwords(&mut self) -> Vec<(&'static str, &mut String)> {
        self.target_database
            .as_mut()
            .map(|db| ("target-database.password", &mut db.password))
            .into_iter()
            .collect()
    }
}

impl Document for SourceConfig {
    const WHAT: &'static str = "source";
    fn adjust(&mut self, ix: &PosIndex, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        SourceConfig::adjust(self, ix, warnings)
    }
    fn passwords(&mut self) -> Vec<(&'static str, &mut String)> {
        vec![("from.password", &mut self.from.password)]
    }
}

fn load<T: Document>(bytes: &[u8]) -> Result<Loaded<T>, ConfigError> {
    load_with(bytes, |_| {})
}

/// [`load`] with `prepare` run on the decoded config before DM's checks.
fn load_with<T: Document>(
    bytes: &[u8],
    prepare: impl FnOnce(&mut T),
) -> Result<Loaded<T>, ConfigError> {
    let text = yaml::text_of(bytes)?;
    let ix = PosIndex::build(text);
    let blank = yaml::is_blank(text);
    let mut config: T = if blank {
        T::default()
    } else {
        yaml::decode(text, T::WHAT)?
    };
    prepare(&mut config);
    let mut warnings = Vec::new();
    config.adjust(&ix, &mut warnings).map_err(|mut e| {
        if blank {
            e.message
                .push_str(&format!(" (the {} file is empty)", T::WHAT));
        }
        e
    })?;
    for (path, value) in config.passwords() {
        match crate::password::resolve(value) {
            Ok(v) => *value = v,
            Err(missing) => {
                return Err(ConfigError::new(
                    code::PASSWORD,
                    format!("{path}: {missing}; export it or write the password (DM-encrypted) in the file"),
                )
                .at(ix.best(path)));
            }
        }
    }
    Ok(Loaded { config, warnings })
}

/// What a YAML file in a task directory is: told apart by its top-level keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Task,
    Source,
}

/// A file with `source-id` or `from` at the top level and none of a task's keys is a source
/// file; anything else is treated as a task file (and fails as one if it is neither).
pub fn detect_kind(bytes: &[u8]) -> Kind {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Kind::Task;
    };
    let ix = PosIndex::build(text);
    let has = |k: &str| ix.key("", k).is_some();
    let task_keys = ["name", "task-mode", "mysql-instances", "target-database"];
    if (has("source-id") || has("from")) && !task_keys.iter().any(|k| has(k)) {
        Kind::Source
    } else {
        Kind::Task
    }
}

/// Parses and checks a task file's contents.
pub fn parse_task(bytes: &[u8]) -> Result<Loaded<TaskConfig>, ConfigError> {
    load(bytes)
}

/// Parses and checks a task file's contents for `start-task --start-time` (DM's
/// `generateSubTask` with a start time): every instance's `meta` is replaced by
/// [`task::START_TIME_BINLOG_NAME`] before the checks, because the time decides where each
/// source starts (dm-master puts the position it resolves to there).
pub fn parse_task_for_start_time(bytes: &[u8]) -> Result<Loaded<TaskConfig>, ConfigError> {
    load_with(bytes, |t: &mut TaskConfig| {
        for inst in t.mysql_instances.iter_mut().flatten() {
            inst.meta = Some(task::Meta {
                binlog_name: task::START_TIME_BINLOG_NAME.into(),
                binlog_pos: 4,
                binlog_gtid: String::new(),
            });
        }
    })
}

/// [`parse_task_for_start_time`] of a file; errors name the file.
pub fn load_task_file_for_start_time(path: &Path) -> Result<Loaded<TaskConfig>, ConfigError> {
    let bytes = read(path)?;
    parse_task_for_start_time(&bytes).map_err(|e| e.in_file(path.display().to_string()))
}

/// Parses and checks a source file's contents.
pub fn parse_source(bytes: &[u8]) -> Result<Loaded<SourceConfig>, ConfigError> {
    load(bytes)
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let label = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        ConfigError::new(code::READ_FILE, format!("read config file: {e}")).in_file(&label)
    })?;
    if meta.len() > yaml::MAX_FILE_BYTES as u64 {
        return Err(yaml::too_large(meta.len()).in_file(label));
    }
    std::fs::read(path).map_err(|e| {
        ConfigError::new(code::READ_FILE, format!("read config file: {e}")).in_file(label)
    })
}

/// Reads, parses and checks a task file; errors name the file.
pub fn load_task_file(path: &Path) -> Result<Loaded<TaskConfig>, ConfigError> {
    let bytes = read(path)?;
    parse_task(&bytes).map_err(|e| e.in_file(path.display().to_string()))
}

/// Reads, parses and checks a source file; errors name the file.
pub fn load_source_file(path: &Path) -> Result<Loaded<SourceConfig>, ConfigError> {
    let bytes = read(path)?;
    parse_source(&bytes).map_err(|e| e.in_file(path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "name: t
task-mode: incremental
target-database:
  host: 127.0.0.1
  port: 3306
  user: root
  password: PASSWORD
  security:
    ssl-ca: /etc/dm/ca.pem
mysql-instances:
  - source-id: s1
    meta:
      binlog-gtid: GTID
";

    const SOURCE: &str = "source-id: s1
from:
  host: 127.0.0.1
  user: root
  password: PASSWORD
";

    fn task(password: &str, gtid: &str) -> Result<Loaded<TaskConfig>, ConfigError> {
        parse_task(
            TASK.replace("PASSWORD", password)
                .replace("GTID", gtid)
                .as_bytes(),
        )
    }

    fn err_of<T: std::fmt::Debug>(r: Result<T, ConfigError>) -> String {
        match r {
            Ok(v) => panic!("loaded: {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn debug_never_prints_a_password_plain_or_from_the_environment() {
        // SAFETY: this variable name is used by this test only.
        unsafe { std::env::set_var("DM_RS_UNIT_DEBUG_PW", "env-secret-4711") };
        for (written, secret) in [
            ("plain-secret-0815", "plain-secret-0815"),
            ("${DM_RS_UNIT_DEBUG_PW}", "env-secret-4711"),
        ] {
            let t = match task(written, "0-1-1") {
                Ok(t) => t,
                Err(e) => panic!("{e}"),
            };
            let s = match parse_source(SOURCE.replace("PASSWORD", written).as_bytes()) {
                Ok(s) => s,
                Err(e) => panic!("{e}"),
            };
            // The value really is there (so the check below means something).
            let db = t.config.target_database.clone().unwrap_or_default();
            assert_eq!(db.plain_password(), secret);
            assert_eq!(s.config.from.plain_password(), secret);
            let shown = format!(
                "{:?} {:#?} {:?} {:#?} {:?} {:?} {:?}",
                t,
                t.config,
                s,
                s.config,
                db,
                s.config.from,
                Some(&db)
            );
            assert!(!shown.contains(secret), "{written} leaked: {shown}");
            assert!(!shown.contains(written), "{written} leaked: {shown}");
            assert!(shown.contains("******"));
            for yaml in [t.config.to_yaml_masked(), s.config.to_yaml_masked()] {
                assert!(!yaml.contains(secret), "{yaml}");
            }
        }
    }

    #[test]
    fn a_malformed_binlog_gtid_is_an_error_with_its_line() {
        assert!(task("pw", "0-1-42,1-2-7").is_ok());
        for (gtid, want) in [
            (
                "3ccc475b-2343-11e7-be21-6c0b84d59f30:1-14",
                "MySQL GTID set",
            ),
            ("0-1", "not a MariaDB GTID"),
            ("0-1-2,", "empty GTID"),
            ("0-1-2,0-3-4", "domain 0 appears twice"),
        ] {
            let msg = err_of(task("pw", &format!("\"{gtid}\"")));
            assert!(
                msg.starts_with(
                    "line 13 column 7: [code=20011] mysql-instance(0)'s meta binlog-gtid:"
                ) && msg.contains(want),
                "{gtid}: {msg}"
            );
        }
    }

    #[test]
    fn a_client_certificate_without_its_key_is_a_config_error() {
        let t = TASK
            .replace("PASSWORD", "pw")
            .replace("GTID", "0-1-1")
            .replace("ssl-ca: /etc/dm/ca.pem", "ssl-cert: /etc/dm/c.pem");
        let msg = err_of(parse_task(t.as_bytes()));
        assert!(
            msg.starts_with("line 8 column 3: [code=11112] target-database.security: ssl-cert is set but ssl-key is not"),
            "{msg}"
        );
        let s = SOURCE.replace("PASSWORD", "pw") + "  security:\n    ssl-key: /k.pem\n";
        let msg = err_of(parse_source(s.as_bytes()));
        assert!(
            msg.contains("from.security: ssl-key is set but ssl-cert is not"),
            "{msg}"
        );
    }

    #[test]
    fn unsupported_keys_load_but_are_listed_with_their_lines_row_rules_are_not() {
        let t = match task("pw", "0-1-1") {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert!(t.config.unsupported().is_empty());

        let text = TASK.replace("PASSWORD", "pw").replace("GTID", "0-1-1")
            + "shard-mode: optimistic
online-ddl-scheme: gh-ost
column-mappings:
  cm:
    schema-pattern: db
    table-pattern: t
    source-column: id
    target-column: id
    expression: partition id
    arguments: [\"1\", \"\", \"t_\"]
expression-filter:
  ef:
    schema: db
    table: t
    insert-value-expr: \"c > 1\"
";
        let text = text
            .replace(
                "    meta:\n",
                "    column-mapping-rules: [cm]\n    expression-filters: [ef]\n    meta:\n",
            )
            .replace(
                "    ssl-ca: /etc/dm/ca.pem\n",
                "    ssl-ca: /etc/dm/ca.pem\n    cert-allowed-cn: [dm]\n",
            );
        let t = match parse_task(text.as_bytes()) {
            Ok(t) => t,
            Err(e) => panic!("parsing must keep working: {e}"),
        };
        let got: Vec<String> = t
            .config
            .unsupported()
            .iter()
            .map(|e| e.to_string())
            .collect();
        // column-mappings and expression-filter run (src/rules/row.rs): not refused.
        let want = [
            "line 18 column 1: [code=20900] online-ddl / online-ddl-scheme",
            "line 10 column 5: [code=20900] target-database.security.cert-allowed-cn",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                g.starts_with(w) && g.contains("not supported by dm-rs yet"),
                "{g}"
            );
        }
        // Positions are not part of the config: equal configs stay equal.
        let mut moved = t.config.clone();
        moved.positions = Default::default();
        assert_eq!(moved, t.config);

        // is-sharding alone means pessimistic shard DDL, which runs; online-ddl alone is
        // refused.
        let t = match parse_task(
            (TASK.replace("PASSWORD", "pw").replace("GTID", "0-1-1")
                + "is-sharding: true\nonline-ddl: true\n")
                .as_bytes(),
        ) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(t.config.shard_mode, "pessimistic");
        let got: Vec<String> = t
            .config
            .unsupported()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].starts_with("line 15 column 1: [code=20900] online-ddl"),
            "{}",
            got[0]
        );
    }
}
