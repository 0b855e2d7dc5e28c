//! dm-worker's settings: DM's `--config FILE` (TOML, the file `dmctl config worker NAME --path
//! FILE` writes and DM deployments keep as `dm-worker.toml`) merged with the command line (a
//! flag wins over the file).
//!
//! | key | default | dm-rs |
//! |---|---|---|
//! | `name` | `worker-<worker-addr>` | the worker's name in the cluster |
//! | `worker-addr` | `127.0.0.1:8262` (`:8262` means every interface) | the address it listens on |
//! | `advertise-addr` | `worker-addr` | the address the master calls it at |
//! | `join` | `127.0.0.1:8261` | the master (`http://` accepted; one address) |
//! | `log-level` | `info` | as DM |
//! | `log-file` | none: stderr | as DM |
//! | `config-file` | — | DM records the file's own path here; read and left alone |
//!
//! DM keys dm-rs has no counterpart for are accepted only with DM's default value (the one
//! `config worker` and DM's own files hold), and refused with the reason otherwise:
//! `log-format` (`text`), `log-rotate` (empty), `redact-info-log` (false), `keepalive-ttl` (60)
//! and `relay-keepalive-ttl` (1800) — dm-master's `worker-offline-after` decides when a worker
//! is gone — `relay-dir` (empty: the relay log lives under the source file's `relay-dir`), and
//! the `ssl-*` keys (empty: no TLS between dm-rs's processes yet). An unknown key, a wrong
//! type or a bad value is an error naming the file, line and column.
//!
//! Called by `src/bin/dm-worker.rs`; parsing and merging are pure and table-tested.

use std::path::Path;

use crate::master::config::{ConfigFileError, check_level, err_at, normalize_addr, toml_doc};

/// `worker-addr` when neither the file nor `--worker-addr` gives one.
pub const DEFAULT_WORKER_ADDR: &str = "127.0.0.1:8262";
/// `join` when neither the file nor `--join` gives one.
pub const DEFAULT_JOIN: &str = "127.0.0.1:8261";

/// What a config file or the command line sets (None: not set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSettings {
    pub name: Option<String>,
    pub worker_addr: Option<String>,
    pub advertise_addr: Option<String>,
    pub join: Option<String>,
    pub log_level: Option<String>,
    pub log_file: Option<String>,
}

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    pub name: String,
    /// Where the worker listens.
    pub worker_addr: String,
    /// Where the master calls it.
    pub advertise_addr: String,
    pub join: String,
    pub log_level: String,
    pub log_file: Option<String>,
}

/// Why the TLS keys take only DM's default.
const NO_TLS: &str = "TLS between dmctl, dm-master and dm-worker is not supported by dm-rs yet";

/// Keys DM writes that dm-rs reads only at DM's default: (key, the default, why another value
/// is refused).
const DEFAULT_ONLY: &[(&str, Default, &str)] = &[
    (
        "log-format",
        Default::Str("text"),
        "dm-rs writes text log lines only",
    ),
    (
        "log-rotate",
        Default::Str(""),
        "dm-rs does not rotate its log (use logrotate with copytruncate)",
    ),
    (
        "redact-info-log",
        Default::Bool(false),
        "dm-rs does not redact row values in its log",
    ),
    (
        "keepalive-ttl",
        Default::Int(60),
        "dm-master's worker-offline-after decides when a silent worker is offline",
    ),
    (
        "relay-keepalive-ttl",
        Default::Int(1800),
        "dm-master's worker-offline-after decides when a silent worker is offline",
    ),
    (
        "relay-dir",
        Default::Str(""),
        "set relay-dir in the source file: dm-rs keeps a source's relay log under <relay-dir>/<worker>",
    ),
    ("ssl-ca", Default::Str(""), NO_TLS),
    ("ssl-cert", Default::Str(""), NO_TLS),
    ("ssl-key", Default::Str(""), NO_TLS),
    ("ssl-ca-base64", Default::Str(""), NO_TLS),
    ("ssl-cert-base64", Default::Str(""), NO_TLS),
    ("ssl-key-base64", Default::Str(""), NO_TLS),
    ("cert-allowed-cn", Default::Array, NO_TLS),
];

/// DM's default of a [`DEFAULT_ONLY`] key.
#[derive(Debug, Clone, Copy)]
enum Default {
    Str(&'static str),
    Bool(bool),
    Int(i64),
    /// An empty array.
    Array,
}

/// The keys dm-rs reads.
const KEYS: &[&str] = &[
    "name",
    "worker-addr",
    "advertise-addr",
    "join",
    "log-level",
    "log-file",
    "config-file",
];

/// A `join` as dm-rs dials it: `http://` dropped, one address.
fn normalize_join(join: &str) -> Result<String, String> {
    let j = join.trim();
    let j = j.strip_prefix("http://").unwrap_or(j);
    if j.starts_with("https://") {
        return Err("TLS between dm-worker and dm-master is not supported by dm-rs yet".into());
    }
    if j.contains(',') {
        return Err(format!(
            "{join:?} lists several masters; dm-rs runs a single master: give its address"
        ));
    }
    if j.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(j.to_string())
}

/// Parses a config file's text (`file` names it in errors).
pub fn parse_file(file: &Path, text: &str) -> Result<WorkerSettings, ConfigFileError> {
    use toml::de::DeValue;
    let doc = toml_doc(file, text)?;
    let mut entries: Vec<_> = doc.get_ref().iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    let mut cfg = WorkerSettings::default();
    for (k, v) in entries {
        let key: &str = k.get_ref().as_ref();
        let (kpos, vpos) = (k.span().start, v.span().start);
        if let Some((_, default, why)) = DEFAULT_ONLY.iter().find(|(x, _, _)| *x == key) {
            let is_default = match (default, v.get_ref()) {
                (Default::Str(d), DeValue::String(s)) => s.as_ref() == *d,
                (Default::Bool(d), DeValue::Boolean(b)) => b == d,
                (Default::Int(d), DeValue::Integer(i)) => {
                    i.as_str().parse::<i64>().is_ok_and(|i| i == *d)
                }
                (Default::Array, DeValue::Array(a)) => a.is_empty(),
                _ => false,
            };
            if !is_default {
                let want = match default {
                    Default::Str(d) => format!("{d:?}"),
                    Default::Bool(b) => b.to_string(),
                    Default::Int(i) => i.to_string(),
                    Default::Array => "[]".into(),
                };
                return Err(err_at(
                    file,
                    text,
                    vpos,
                    format!("{key}: dm-rs takes only DM's default ({want}) here: {why}"),
                ));
            }
            continue;
        }
        let Some(known) = KEYS.iter().find(|x| **x == key).copied() else {
            return Err(err_at(
                file,
                text,
                kpos,
                format!(
                    "unknown key {key:?}; dm-worker knows {} (and DM's {})",
                    KEYS.join(", "),
                    DEFAULT_ONLY
                        .iter()
                        .map(|(k, _, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let s = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            other => {
                return Err(err_at(
                    file,
                    text,
                    vpos,
                    format!(
                        "{known} must be a string in quotes, not a TOML {}",
                        other.type_str()
                    ),
                ));
            }
        };
        let bad = |msg: String| err_at(file, text, vpos, format!("{known}: {msg}"));
        match known {
            "name" if s.is_empty() => return Err(bad("must not be empty".into())),
            "name" => cfg.name = Some(s),
            "worker-addr" => cfg.worker_addr = Some(normalize_addr(&s).map_err(bad)?),
            "advertise-addr" if s.is_empty() => {}
            "advertise-addr" => cfg.advertise_addr = Some(s),
            "join" => cfg.join = Some(normalize_join(&s).map_err(bad)?),
            "log-level" => cfg.log_level = Some(check_level(&s).map_err(bad)?),
            "log-file" => cfg.log_file = Some(s).filter(|s| !s.is_empty()),
            // DM's record of the file's own path.
            _ => {}
        }
    }
    Ok(cfg)
}

impl WorkerConfig {
    /// The flags over the file over the defaults. Flag values are checked as the file's are
    /// (errors name the flag).
    pub fn resolve(
        file: &WorkerSettings,
        flags: &WorkerSettings,
    ) -> Result<WorkerConfig, ConfigFileError> {
        let flag_err = |flag: &str, msg: String| ConfigFileError {
            at: format!("--{flag}"),
            msg,
        };
        let worker_addr = match &flags.worker_addr {
            Some(a) => normalize_addr(a).map_err(|m| flag_err("worker-addr", m))?,
            None => file
                .worker_addr
                .clone()
                .unwrap_or_else(|| DEFAULT_WORKER_ADDR.to_string()),
        };
        let join = match &flags.join {
            Some(j) => normalize_join(j).map_err(|m| flag_err("join", m))?,
            None => file
                .join
                .clone()
                .unwrap_or_else(|| DEFAULT_JOIN.to_string()),
        };
        let log_level = match &flags.log_level {
            Some(l) => check_level(l).map_err(|m| flag_err("log-level", m))?,
            None => file.log_level.clone().unwrap_or_else(|| "info".into()),
        };
        let name = flags
            .name
            .clone()
            .or_else(|| file.name.clone())
            .unwrap_or_else(|| format!("worker-{}", worker_addr.replace([':', '.'], "-")));
        let advertise_addr = flags
            .advertise_addr
            .clone()
            .or_else(|| file.advertise_addr.clone())
            .unwrap_or_else(|| worker_addr.clone());
        let log_file = flags.log_file.clone().or_else(|| file.log_file.clone());
        Ok(WorkerConfig {
            name,
            worker_addr,
            advertise_addr,
            join,
            log_level,
            log_file,
        })
    }

    /// Reads `path` (when given) and merges it with the flags.
    pub fn load(
        path: Option<&Path>,
        flags: &WorkerSettings,
    ) -> Result<WorkerConfig, ConfigFileError> {
        let file = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigFileError {
                    at: p.display().to_string(),
                    msg: format!("cannot read the config file: {e}"),
                })?;
                parse_file(p, &text)?
            }
            None => WorkerSettings::default(),
        };
        WorkerConfig::resolve(&file, flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DM's `dm/tests/dmctl_basic/conf/get_worker1.toml`, as `config worker` writes it.
    const DM_GET_WORKER1: &str = r#"name = "worker1"
log-level = "debug"
log-file = "/tmp/dm_test/dmctl_basic/worker1/log/dm-worker.log"
log-format = "text"
log-rotate = ""
redact-info-log = false
join = "http://127.0.0.1:8261"
worker-addr = "0.0.0.0:8262"
advertise-addr = "127.0.0.1:8262"
config-file = "/tmp/dm_test/dmctl_basic/worker1/dm-worker.toml"
keepalive-ttl = 60
relay-keepalive-ttl = 1800
relay-dir = ""
ssl-ca = ""
ssl-cert = ""
ssl-key = ""
ssl-ca-base64 = ""
ssl-key-base64 = ""
ssl-cert-base64 = ""
"#;

    #[test]
    fn dms_own_worker_file_loads() {
        let f = parse_file(Path::new("w.toml"), DM_GET_WORKER1).unwrap();
        let c = WorkerConfig::resolve(&f, &WorkerSettings::default()).unwrap();
        assert_eq!(
            c,
            WorkerConfig {
                name: "worker1".into(),
                worker_addr: "0.0.0.0:8262".into(),
                advertise_addr: "127.0.0.1:8262".into(),
                join: "127.0.0.1:8261".into(),
                log_level: "debug".into(),
                log_file: Some("/tmp/dm_test/dmctl_basic/worker1/log/dm-worker.log".into()),
            }
        );
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file = parse_file(
            Path::new("w.toml"),
            "name = \"from-file\"\nworker-addr = \":9000\"\njoin = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let flags = WorkerSettings {
            name: Some("from-flag".into()),
            join: Some("http://127.0.0.1:2".into()),
            ..WorkerSettings::default()
        };
        let c = WorkerConfig::resolve(&file, &flags).unwrap();
        assert_eq!(c.name, "from-flag");
        assert_eq!(c.worker_addr, "0.0.0.0:9000");
        assert_eq!(c.advertise_addr, "0.0.0.0:9000");
        assert_eq!(c.join, "127.0.0.1:2");
        assert_eq!(c.log_level, "info");
        let d =
            WorkerConfig::resolve(&WorkerSettings::default(), &WorkerSettings::default()).unwrap();
        assert_eq!(d.worker_addr, DEFAULT_WORKER_ADDR);
        assert_eq!(d.join, DEFAULT_JOIN);
        assert_eq!(d.name, "worker-127-0-0-1-8262");
    }

    #[test]
    fn bad_files_name_the_line_and_the_reason() {
        let cases: &[(&str, &str)] = &[
            (
                "name = \"w\"\nbogus = 1\n",
                "w.toml:2:1: unknown key \"bogus\"",
            ),
            (
                "keepalive-ttl = 10\n",
                "w.toml:1:17: keepalive-ttl: dm-rs takes only DM's default (60) here: dm-master's worker-offline-after",
            ),
            (
                "ssl-ca = \"/ca.pem\"\n",
                "w.toml:1:10: ssl-ca: dm-rs takes only DM's default (\"\") here: TLS",
            ),
            (
                "relay-dir = \"./relay\"\n",
                "w.toml:1:13: relay-dir: dm-rs takes only DM's default (\"\")",
            ),
            ("log-format = \"json\"\n", "w.toml:1:14: log-format"),
            ("redact-info-log = true\n", "w.toml:1:19: redact-info-log"),
            (
                "join = \"a:1,b:2\"\n",
                "w.toml:1:8: join: \"a:1,b:2\" lists several masters",
            ),
            ("join = \"https://a:1\"\n", "w.toml:1:8: join: TLS"),
            (
                "worker-addr = \"nowhere\"\n",
                "w.toml:1:15: worker-addr: \"nowhere\" is not an address",
            ),
            (
                "log-level = \"loud\"\n",
                "w.toml:1:13: log-level: \"loud\" is not a log level",
            ),
            (
                "name = 3\n",
                "w.toml:1:8: name must be a string in quotes, not a TOML integer",
            ),
            ("name = \"\"\n", "w.toml:1:8: name: must not be empty"),
            ("name = \n", "w.toml:1:"),
        ];
        for (text, want) in cases {
            let e = parse_file(Path::new("w.toml"), text)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
