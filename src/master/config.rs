//! dm-master's settings: DM's `--config FILE` (TOML) with DM's keys and dm-rs's own timings,
//! merged with the command line (a flag wins over the file), and `update-master-config`, which
//! rewrites the file and applies what can change while the master runs.
//!
//! The file's keys:
//!
//! | key | default | online |
//! |---|---|---|
//! | `name` | `dm-master` | restart |
//! | `master-addr` | `127.0.0.1:8261` (`:8261` means every interface) | restart |
//! | `data-dir` | `default.dm-master` | restart |
//! | `log-level` | `info` (`trace`, `debug`, `info`, `warn`, `error`; `fatal` = `error`) | yes |
//! | `log-file` | none: stderr | restart |
//! | `push-interval` | `1s`: how often every worker gets its desired state (the keepalive) | yes |
//! | `worker-offline-after` | `8s`: a worker silent this long is offline, its source bound again | yes |
//! | `worker-call-timeout` | `3s`: bound of every call to a worker | yes |
//! | `worker-connect-timeout` | `2s`: bound of a connection attempt to a worker | yes |
//! | `secret-key-path` | none: DM's built-in key | restart |
//!
//! `secret-key-path` (DM v7+, also `--secret-key-path`) names a file holding a hex AES-256 key
//! (64 digits): the master seals passwords with it (its store, the push to the workers, which
//! get the key with it, `dmctl encrypt` through the master) and reads DM v7 ciphertexts made
//! with it; see [`crate::password`] and `src/master/secret.rs`.
//!
//! Durations are Go durations (`500ms`, `2s`). A worker stops its subtasks when it hears
//! nothing for [`FENCE_AFTER`], so `push-interval + worker-call-timeout` must stay under it
//! (else healthy workers fence themselves) and `worker-offline-after` must exceed it (else a
//! source could be bound again while its old worker still runs it). An unknown key, a DM key
//! dm-rs does not support (with the reason) or a bad value is an error naming the file, line
//! and column.
//!
//! Called by `src/bin/dm-master.rs` ([`Startup::load`]) and by the gRPC handler of
//! update-master-config ([`Settings::update`]). Parsing, merging and the diff are pure and
//! table-tested; the update writes the file atomically (temporary file, fsync, rename).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::scheduler::{Scheduler, Timings};
use crate::logging::{self, LogHandle};
use crate::worker::FENCE_AFTER;

/// `name` when neither the file nor `--name` gives one.
pub const DEFAULT_NAME: &str = "dm-master";
/// `master-addr` when neither the file nor `--master-addr` gives one.
pub const DEFAULT_MASTER_ADDR: &str = "127.0.0.1:8261";
/// `data-dir` when neither the file nor `--data-dir` gives one.
pub const DEFAULT_DATA_DIR: &str = "default.dm-master";
/// `log-level` when neither the file nor `--log-level` gives one.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// The keys of the config file, in the order the docs list them.
pub const KEYS: &[&str] = &[
    "name",
    "master-addr",
    "data-dir",
    "log-level",
    "log-file",
    "push-interval",
    "worker-offline-after",
    "worker-call-timeout",
    "worker-connect-timeout",
    "secret-key-path",
];

/// DM's master keys dm-rs refuses, with what to do instead.
const DM_KEYS: &[(&str, &str)] = &[
    (
        "advertise-addr",
        "dm-rs's workers reach the master at the address they join (dm-worker --join); remove it",
    ),
    (
        "peer-urls",
        "DM's embedded etcd (several masters); dm-rs runs a single master: remove it",
    ),
    (
        "advertise-peer-urls",
        "DM's embedded etcd (several masters); dm-rs runs a single master: remove it",
    ),
    (
        "initial-cluster",
        "DM's embedded etcd (several masters); dm-rs runs a single master: remove it",
    ),
    (
        "initial-cluster-state",
        "DM's embedded etcd (several masters); dm-rs runs a single master: remove it",
    ),
    (
        "join",
        "DM's embedded etcd (several masters); dm-rs runs a single master: remove it",
    ),
    (
        "deploy",
        "DM v1's deploy map; dm-rs's workers register themselves (dm-worker --join): remove it",
    ),
    (
        "rpc-timeout",
        "use worker-call-timeout (dm-rs's bound of every call to a worker)",
    ),
    (
        "ssl-ca",
        "TLS between dmctl, dm-master and dm-worker is not supported by dm-rs yet: remove it",
    ),
    (
        "ssl-cert",
        "TLS between dmctl, dm-master and dm-worker is not supported by dm-rs yet: remove it",
    ),
    (
        "ssl-key",
        "TLS between dmctl, dm-master and dm-worker is not supported by dm-rs yet: remove it",
    ),
    (
        "cert-allowed-cn",
        "TLS between dmctl, dm-master and dm-worker is not supported by dm-rs yet: remove it",
    ),
    ("log-format", "dm-rs writes text log lines only: remove it"),
    (
        "log-rotate",
        "dm-rs does not rotate its log (use logrotate with copytruncate): remove it",
    ),
];

/// A config file (or a flag) that cannot be used: `file:line:col: what` (or `--flag: what`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {msg}")]
pub struct ConfigFileError {
    pub at: String,
    pub msg: String,
}

/// What a config file sets (None: the file does not set it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileConfig {
    pub name: Option<String>,
    pub master_addr: Option<String>,
    pub data_dir: Option<String>,
    pub log_level: Option<String>,
    pub log_file: Option<String>,
    pub push_interval: Option<Duration>,
    pub offline_after: Option<Duration>,
    pub call_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub secret_key_path: Option<String>,
}

/// What the command line sets (None: the flag was not given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub name: Option<String>,
    pub master_addr: Option<String>,
    pub data_dir: Option<String>,
    pub log_level: Option<String>,
    pub log_file: Option<String>,
    pub secret_key_path: Option<String>,
}

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterConfig {
    pub name: String,
    pub master_addr: String,
    pub data_dir: PathBuf,
    pub log_level: String,
    pub log_file: Option<PathBuf>,
    pub timings: Timings,
    /// DM v7's `secret-key-path` (the key is read at the start, `src/master/secret.rs`).
    pub secret_key_path: Option<PathBuf>,
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

pub(crate) fn err_at(
    file: &Path,
    text: &str,
    offset: usize,
    msg: impl Into<String>,
) -> ConfigFileError {
    let (line, col) = line_col(text, offset);
    ConfigFileError {
        at: format!("{}:{line}:{col}", file.display()),
        msg: msg.into(),
    }
}

/// A `master-addr` as the master listens on it: `host:port` (an IP address), `:port` for
/// every interface.
pub fn normalize_addr(addr: &str) -> Result<String, String> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.parse::<std::net::SocketAddr>()
        .map(|_| full.clone())
        .map_err(|_| {
            format!("{addr:?} is not an address to listen on: want IP:PORT (e.g. 127.0.0.1:8261) or :PORT")
        })
}

pub(crate) fn check_level(level: &str) -> Result<String, String> {
    logging::level_name(level)
        .map(|_| level.to_ascii_lowercase())
        .ok_or_else(|| {
            format!(
                "{level:?} is not a log level ({})",
                logging::LEVELS.join(", ")
            )
        })
}

/// The key closest to `key`, when one is close enough to be a typo.
fn suggestion(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (crate::config::yaml::edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

/// A TOML config file's top-level table (`file` names it in errors).
pub(crate) fn toml_doc<'a>(
    file: &Path,
    text: &'a str,
) -> Result<toml::Spanned<toml::de::DeTable<'a>>, ConfigFileError> {
    toml::de::DeTable::parse(text).map_err(|e| {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        err_at(
            file,
            text,
            at,
            format!("not valid TOML: {}", e.message().trim()),
        )
    })
}

/// Parses a config file's text (`file` names it in errors).
pub fn parse_file(file: &Path, text: &str) -> Result<FileConfig, ConfigFileError> {
    use toml::de::DeValue;
    let doc = toml_doc(file, text)?;
    let mut entries: Vec<_> = doc.get_ref().iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    let mut cfg = FileConfig::default();
    // Where each timing was set, for the checks that involve two of them.
    let mut timing_at: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (k, v) in entries {
        let key: &str = k.get_ref().as_ref();
        let kpos = k.span().start;
        let vpos = v.span().start;
        let Some(known) = KEYS.iter().find(|x| **x == key).copied() else {
            if let Some((_, why)) = DM_KEYS.iter().find(|(x, _)| *x == key) {
                return Err(err_at(
                    file,
                    text,
                    kpos,
                    format!("{key:?} is not supported by dm-rs: {why}"),
                ));
            }
            let hint = match suggestion(key) {
                Some(s) => format!(" (did you mean {s:?}?)"),
                None => format!("; dm-master knows {}", KEYS.join(", ")),
            };
            return Err(err_at(
                file,
                text,
                kpos,
                format!("unknown key {key:?}{hint}"),
            ));
        };
        let string = |what: &str| -> Result<String, ConfigFileError> {
            match v.get_ref() {
                DeValue::String(s) => Ok(s.to_string()),
                other => Err(err_at(
                    file,
                    text,
                    vpos,
                    format!(
                        "{known} must be {what} in quotes, not a TOML {}",
                        other.type_str()
                    ),
                )),
            }
        };
        let duration = || -> Result<Duration, ConfigFileError> {
            let s = string("a duration such as \"2s\"")?;
            match crate::config::source::parse_go_duration(&s) {
                Some(d) if !d.is_zero() => Ok(d),
                _ => Err(err_at(
                    file,
                    text,
                    vpos,
                    format!(
                        "{known} {s:?} is not a duration above zero: want e.g. \"500ms\" or \"2s\""
                    ),
                )),
            }
        };
        let bad = |msg: String| err_at(file, text, vpos, format!("{known}: {msg}"));
        match known {
            "name" => {
                let s = string("a name")?;
                if s.is_empty() {
                    return Err(bad("must not be empty".into()));
                }
                cfg.name = Some(s);
            }
            "master-addr" => {
                let s = string("an address")?;
                cfg.master_addr = Some(normalize_addr(&s).map_err(bad)?);
            }
            "data-dir" => {
                let s = string("a directory")?;
                if s.is_empty() {
                    return Err(bad("must not be empty".into()));
                }
                cfg.data_dir = Some(s);
            }
            "log-level" => cfg.log_level = Some(check_level(&string("a level")?).map_err(bad)?),
            "log-file" => {
                let s = string("a file name")?;
                cfg.log_file = Some(s).filter(|s| !s.is_empty());
            }
            "push-interval" => cfg.push_interval = Some(duration()?),
            "worker-offline-after" => cfg.offline_after = Some(duration()?),
            "worker-call-timeout" => cfg.call_timeout = Some(duration()?),
            "worker-connect-timeout" => cfg.connect_timeout = Some(duration()?),
            "secret-key-path" => {
                let s = string("a file name")?;
                cfg.secret_key_path = Some(s).filter(|s| !s.is_empty());
            }
            _ => {}
        }
        if known.starts_with("push-") || known.starts_with("worker-") {
            timing_at.insert(known, vpos);
        }
    }
    let t = cfg.timings();
    if let Err((keys, msg)) = check_timings(&t) {
        let at = keys
            .iter()
            .find_map(|k| timing_at.get(k).copied())
            .unwrap_or(0);
        return Err(err_at(file, text, at, msg));
    }
    Ok(cfg)
}

/// The checks two timings take together, against the workers' fence ([`FENCE_AFTER`]): the
/// keys involved (first the one to point at) and the message.
pub fn check_timings(t: &Timings) -> Result<(), (Vec<&'static str>, String)> {
    if t.push_interval + t.call_timeout >= FENCE_AFTER {
        return Err((
            vec!["push-interval", "worker-call-timeout"],
            format!(
                "push-interval ({:?}) + worker-call-timeout ({:?}) must stay under the workers' fence ({FENCE_AFTER:?}): a worker that hears nothing from the master for that long stops its subtasks",
                t.push_interval, t.call_timeout
            ),
        ));
    }
    if t.offline_after <= FENCE_AFTER {
        return Err((
            vec!["worker-offline-after"],
            format!(
                "worker-offline-after ({:?}) must be longer than the workers' fence ({FENCE_AFTER:?}), so that a silent worker has stopped its subtasks before its source is bound to another",
                t.offline_after
            ),
        ));
    }
    Ok(())
}

impl FileConfig {
    /// The timings this file sets, the defaults for the others.
    pub fn timings(&self) -> Timings {
        let d = Timings::default();
        Timings {
            push_interval: self.push_interval.unwrap_or(d.push_interval),
            offline_after: self.offline_after.unwrap_or(d.offline_after),
            call_timeout: self.call_timeout.unwrap_or(d.call_timeout),
            connect_timeout: self.connect_timeout.unwrap_or(d.connect_timeout),
        }
    }
}

impl MasterConfig {
    /// The settings from the file (if any) with the flags on top, defaults for the rest.
    pub fn resolve(file: &FileConfig, flags: &Flags) -> Result<MasterConfig, ConfigFileError> {
        let flag_err = |flag: &str, msg: String| ConfigFileError {
            at: format!("--{flag}"),
            msg,
        };
        let master_addr = match &flags.master_addr {
            Some(a) => normalize_addr(a).map_err(|m| flag_err("master-addr", m))?,
            None => file
                .master_addr
                .clone()
                .unwrap_or_else(|| DEFAULT_MASTER_ADDR.into()),
        };
        let log_level = match &flags.log_level {
            Some(l) => check_level(l).map_err(|m| flag_err("log-level", m))?,
            None => file
                .log_level
                .clone()
                .unwrap_or_else(|| DEFAULT_LOG_LEVEL.into()),
        };
        let pick = |flag: &Option<String>, file: &Option<String>, default: &str| {
            flag.clone()
                .or_else(|| file.clone())
                .unwrap_or_else(|| default.to_string())
        };
        Ok(MasterConfig {
            name: pick(&flags.name, &file.name, DEFAULT_NAME),
            master_addr,
            data_dir: pick(&flags.data_dir, &file.data_dir, DEFAULT_DATA_DIR).into(),
            log_level,
            log_file: flags
                .log_file
                .clone()
                .or_else(|| file.log_file.clone())
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            timings: file.timings(),
            secret_key_path: flags
                .secret_key_path
                .clone()
                .or_else(|| file.secret_key_path.clone())
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
        })
    }
}

/// One setting that differs between the settings in force and a new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    pub from: String,
    pub to: String,
    /// Applied while the master runs (else it takes effect after a restart).
    pub online: bool,
}

fn dur(d: Duration) -> String {
    format!("{d:?}")
}

fn key_path(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(DM's built-in key)".into())
}

/// A TOML basic string: quoted, with `"`, `\\` and control characters escaped.
pub(crate) fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Go duration for the file: whole seconds as `2s`, else milliseconds.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl MasterConfig {
    /// The settings in force as a config file (DM's `get-config master`): every key, so
    /// `dm-master --config` of it starts the same master. Holds no secret (only the key's path).
    pub fn to_toml(&self) -> String {
        let t = &self.timings;
        let go = |d: Duration| toml_str(&go_duration(d));
        let mut out = String::new();
        out.push_str(&format!("name = {}\n", toml_str(&self.name)));
        out.push_str(&format!("master-addr = {}\n", toml_str(&self.master_addr)));
        out.push_str(&format!(
            "data-dir = {}\n",
            toml_str(&self.data_dir.display().to_string())
        ));
        out.push_str(&format!("log-level = {}\n", toml_str(&self.log_level)));
        let log_file = self
            .log_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        out.push_str(&format!("log-file = {}\n", toml_str(&log_file)));
        out.push_str(&format!("push-interval = {}\n", go(t.push_interval)));
        out.push_str(&format!("worker-offline-after = {}\n", go(t.offline_after)));
        out.push_str(&format!("worker-call-timeout = {}\n", go(t.call_timeout)));
        out.push_str(&format!(
            "worker-connect-timeout = {}\n",
            go(t.connect_timeout)
        ));
        let key = self
            .secret_key_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        out.push_str(&format!("secret-key-path = {}\n", toml_str(&key)));
        out
    }
}

/// The settings that differ between `old` and `new`, in [`KEYS`] order.
pub fn changes(old: &MasterConfig, new: &MasterConfig) -> Vec<Change> {
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(stderr)".into())
    };
    let (a, b) = (&old.timings, &new.timings);
    let all = [
        ("name", old.name.clone(), new.name.clone(), false),
        (
            "master-addr",
            old.master_addr.clone(),
            new.master_addr.clone(),
            false,
        ),
        (
            "data-dir",
            old.data_dir.display().to_string(),
            new.data_dir.display().to_string(),
            false,
        ),
        (
            "log-level",
            old.log_level.clone(),
            new.log_level.clone(),
            true,
        ),
        ("log-file", path(&old.log_file), path(&new.log_file), false),
        (
            "secret-key-path",
            key_path(&old.secret_key_path),
            key_path(&new.secret_key_path),
            false,
        ),
        (
            "push-interval",
            dur(a.push_interval),
            dur(b.push_interval),
            true,
        ),
        (
            "worker-offline-after",
            dur(a.offline_after),
            dur(b.offline_after),
            true,
        ),
        (
            "worker-call-timeout",
            dur(a.call_timeout),
            dur(b.call_timeout),
            true,
        ),
        (
            "worker-connect-timeout",
            dur(a.connect_timeout),
            dur(b.connect_timeout),
            true,
        ),
    ];
    all.into_iter()
        .filter(|(_, from, to, _)| from != to)
        .map(|(key, from, to, online)| Change {
            key,
            from,
            to,
            online,
        })
        .collect()
}

/// The keys a file sets that a flag overrides, with the flag's value.
fn overridden(file: &FileConfig, flags: &Flags) -> Vec<(&'static str, String)> {
    let pairs = [
        ("name", &file.name, &flags.name),
        ("master-addr", &file.master_addr, &flags.master_addr),
        ("data-dir", &file.data_dir, &flags.data_dir),
        ("log-level", &file.log_level, &flags.log_level),
        ("log-file", &file.log_file, &flags.log_file),
        (
            "secret-key-path",
            &file.secret_key_path,
            &flags.secret_key_path,
        ),
    ];
    pairs
        .into_iter()
        .filter_map(|(k, f, fl)| match (f, fl) {
            (Some(f), Some(fl)) if f != fl => Some((k, fl.clone())),
            _ => None,
        })
        .collect()
}

/// update-master-config's `msg`: each change (applied online, or "takes effect after a
/// restart"), then each key the new file sets that a command-line flag overrides; empty
/// when nothing changes.
pub fn update_message(changes: &[Change], shadowed: &[(&'static str, String)]) -> String {
    let mut parts: Vec<String> = changes
        .iter()
        .map(|c| {
            if c.online {
                format!("{}: changed from {} to {} (applied)", c.key, c.from, c.to)
            } else {
                format!(
                    "{}: changed from {} to {}; takes effect after a restart",
                    c.key, c.from, c.to
                )
            }
        })
        .collect();
    for (key, value) in shadowed {
        parts.push(format!(
            "{key}: the file's value is not used: --{key} {value} on the command line overrides it"
        ));
    }
    parts.join("; ")
}

/// Writes `text` to `path` atomically: a temporary file beside it (mode 0600), fsynced, then
/// renamed over it, then the directory fsynced.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "dm-master.toml".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What dm-master starts with: the settings, the file they came from and the flags.
#[derive(Debug, Clone)]
pub struct Startup {
    pub config: MasterConfig,
    pub path: Option<PathBuf>,
    pub file: FileConfig,
    pub flags: Flags,
}

impl Startup {
    /// Reads `--config FILE` (if given) and merges the flags.
    pub fn load(path: Option<&Path>, flags: Flags) -> Result<Startup, ConfigFileError> {
        let file = match path {
            None => FileConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigFileError {
                    at: p.display().to_string(),
                    msg: format!("can not read the config file: {e}"),
                })?;
                parse_file(p, &text)?
            }
        };
        let config = MasterConfig::resolve(&file, &flags)?;
        Ok(Startup {
            config,
            path: path.map(Path::to_path_buf),
            file,
            flags,
        })
    }
}

/// The master's settings while it runs, shared by the gRPC service: what is in force, the
/// file and flags it came from, and the log level handle.
pub struct Settings {
    path: Option<PathBuf>,
    flags: Flags,
    log: Option<LogHandle>,
    /// (settings in force, the file's last content as parsed)
    state: Mutex<(MasterConfig, FileConfig)>,
    /// One update at a time.
    updates: tokio::sync::Mutex<()>,
}

impl Settings {
    pub fn new(startup: Startup, log: Option<LogHandle>) -> Arc<Settings> {
        Arc::new(Settings {
            path: startup.path,
            flags: startup.flags,
            log,
            state: Mutex::new((startup.config, startup.file)),
            updates: tokio::sync::Mutex::new(()),
        })
    }

    /// The settings in force.
    pub fn current(&self) -> MasterConfig {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// update-master-config: checks `text` as the master's config file, writes it over the
    /// file (atomically), applies the log level and the timings, and says what changed; the
    /// other settings take effect after a restart. Err (nothing written, nothing applied)
    /// when the master has no config file or `text` is not a valid one.
    pub async fn update(&self, text: &str, sched: &Scheduler) -> Result<String, String> {
        let Some(path) = self.path.clone() else {
            return Err(
                "dm-master was started without --config: there is no config file to update (start it with --config FILE to use update-master-config)"
                    .into(),
            );
        };
        let _one = self.updates.lock().await;
        let file = parse_file(&path, text).map_err(|e| e.to_string())?;
        let next = MasterConfig::resolve(&file, &self.flags).map_err(|e| e.to_string())?;
        let current = self.current();
        let changes = changes(&current, &next);
        let shadowed = overridden(&file, &self.flags);
        let to_write = text.to_string();
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&target, &to_write))
            .await
            .map_err(|e| format!("{}: can not write the config file: {e}", path.display()))?
            .map_err(|e| format!("{}: can not write the config file: {e}", path.display()))?;
        let mut in_force = current;
        let mut changes = changes;
        for c in changes.iter_mut().filter(|c| c.online) {
            match c.key {
                "log-level" => match self.log.as_ref().map(|l| l.set_level(&next.log_level)) {
                    Some(Err(e)) => {
                        // Not applied: it takes effect at the next start, as the message says.
                        tracing::warn!("update-master-config: {e}");
                        c.online = false;
                    }
                    _ => in_force.log_level = next.log_level.clone(),
                },
                _ => in_force.timings = next.timings,
            }
        }
        sched.set_timings(in_force.timings);
        tracing::info!(file = %path.display(), changes = ?changes, "update-master-config: the config file is rewritten");
        tracing::debug!(log_level = %in_force.log_level, "update-master-config: settings in force");
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = (in_force, file);
        Ok(update_message(&changes, &shadowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &str = "dm-master.toml";

    fn parse(text: &str) -> Result<FileConfig, String> {
        parse_file(Path::new(F), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_dm_config_file_parses_with_dm_rs_timings() {
        let text = "# DM's keys\nname = \"master1\"\nmaster-addr = \":8261\"\ndata-dir = \"/var/lib/dm\"\nlog-level = \"DEBUG\"\nlog-file = \"/var/log/dm-master.log\"\n\n# dm-rs's\npush-interval = \"500ms\"\nworker-offline-after = \"10s\"\nworker-call-timeout = \"2s\"\nworker-connect-timeout = \"1s\"\nsecret-key-path = \"/etc/dm/key.txt\"\n";
        let c = parse(text).unwrap();
        assert_eq!(
            c,
            FileConfig {
                name: Some("master1".into()),
                master_addr: Some("0.0.0.0:8261".into()),
                data_dir: Some("/var/lib/dm".into()),
                log_level: Some("debug".into()),
                log_file: Some("/var/log/dm-master.log".into()),
                push_interval: Some(Duration::from_millis(500)),
                offline_after: Some(Duration::from_secs(10)),
                call_timeout: Some(Duration::from_secs(2)),
                connect_timeout: Some(Duration::from_secs(1)),
                secret_key_path: Some("/etc/dm/key.txt".into()),
            }
        );
        assert_eq!(parse("").unwrap(), FileConfig::default());
        assert_eq!(parse("# nothing\n").unwrap(), FileConfig::default());
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let cases: &[(&str, &str)] = &[
            (
                "name = \"m\"\nlog-levle = \"info\"\n",
                "dm-master.toml:2:1: unknown key \"log-levle\" (did you mean \"log-level\"?)",
            ),
            (
                "colour = 1\n",
                "dm-master.toml:1:1: unknown key \"colour\"; dm-master knows name, master-addr, data-dir, log-level, log-file, push-interval, worker-offline-after, worker-call-timeout, worker-connect-timeout, secret-key-path",
            ),
            (
                "log-level = \"verbose\"\n",
                "dm-master.toml:1:13: log-level: \"verbose\" is not a log level (trace, debug, info, warn, error, fatal)",
            ),
            (
                "\n\nmaster-addr = \"localhost\"\n",
                "dm-master.toml:3:15: master-addr: \"localhost\" is not an address to listen on: want IP:PORT (e.g. 127.0.0.1:8261) or :PORT",
            ),
            (
                "push-interval = 5\n",
                "dm-master.toml:1:17: push-interval must be a duration such as \"2s\" in quotes, not a TOML integer",
            ),
            (
                "worker-call-timeout = \"3 seconds\"\n",
                "dm-master.toml:1:23: worker-call-timeout \"3 seconds\" is not a duration above zero: want e.g. \"500ms\" or \"2s\"",
            ),
            (
                "push-interval = \"0s\"\n",
                "dm-master.toml:1:17: push-interval \"0s\" is not a duration above zero: want e.g. \"500ms\" or \"2s\"",
            ),
            (
                "name = \"\"\n",
                "dm-master.toml:1:8: name: must not be empty",
            ),
            (
                "name = \"m\"\ninitial-cluster = \"m=http://127.0.0.1:8291\"\n",
                "dm-master.toml:2:1: \"initial-cluster\" is not supported by dm-rs: DM's embedded etcd (several masters); dm-rs runs a single master: remove it",
            ),
            (
                "[[deploy]]\nsource-id = \"s1\"\n",
                "dm-master.toml:1:3: \"deploy\" is not supported by dm-rs: DM v1's deploy map; dm-rs's workers register themselves (dm-worker --join): remove it",
            ),
            (
                "name = \"m\"\nname = \"n\"\n",
                "dm-master.toml:2:1: not valid TOML: duplicate key",
            ),
            (
                "push-interval = \"4s\"\n",
                "dm-master.toml:1:17: push-interval (4s) + worker-call-timeout (3s) must stay under the workers' fence (6s): a worker that hears nothing from the master for that long stops its subtasks",
            ),
            (
                "worker-call-timeout = \"5s\"\n",
                "dm-master.toml:1:23: push-interval (1s) + worker-call-timeout (5s) must stay under the workers' fence (6s): a worker that hears nothing from the master for that long stops its subtasks",
            ),
            (
                "worker-offline-after = \"5s\"\n",
                "dm-master.toml:1:24: worker-offline-after (5s) must be longer than the workers' fence (6s), so that a silent worker has stopped its subtasks before its source is bound to another",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap_err(), *want, "{text:?}");
        }
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file = FileConfig {
            name: Some("from-file".into()),
            data_dir: Some("/file/dir".into()),
            log_level: Some("debug".into()),
            push_interval: Some(Duration::from_millis(500)),
            ..Default::default()
        };
        let flags = Flags {
            data_dir: Some("/flag/dir".into()),
            master_addr: Some(":9261".into()),
            ..Default::default()
        };
        let c = MasterConfig::resolve(&file, &flags).unwrap();
        assert_eq!(
            c,
            MasterConfig {
                name: "from-file".into(),
                master_addr: "0.0.0.0:9261".into(),
                data_dir: "/flag/dir".into(),
                log_level: "debug".into(),
                log_file: None,
                timings: Timings {
                    push_interval: Duration::from_millis(500),
                    ..Timings::default()
                },
                secret_key_path: None,
            }
        );
        // get-config master's TOML is a config file that gives the same settings back.
        let keyed = Flags {
            secret_key_path: Some("/etc/dm/key \"1\".txt".into()),
            log_file: Some("/var/log/dm.log".into()),
            ..flags.clone()
        };
        let c = MasterConfig::resolve(&file, &keyed).unwrap();
        let text = c.to_toml();
        assert!(
            text.contains("secret-key-path = \"/etc/dm/key \\\"1\\\".txt\"\n"),
            "{text}"
        );
        assert!(text.contains("push-interval = \"500ms\"\n"), "{text}");
        let again = MasterConfig::resolve(&parse(&text).unwrap(), &Flags::default()).unwrap();
        assert_eq!(again, c, "{text}");
        let d = MasterConfig::resolve(&FileConfig::default(), &Flags::default()).unwrap();
        assert_eq!(
            (
                d.name.as_str(),
                d.master_addr.as_str(),
                d.log_level.as_str()
            ),
            (DEFAULT_NAME, DEFAULT_MASTER_ADDR, DEFAULT_LOG_LEVEL)
        );
        assert_eq!(d.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        let bad = Flags {
            log_level: Some("loud".into()),
            ..Default::default()
        };
        assert_eq!(
            MasterConfig::resolve(&file, &bad).unwrap_err().to_string(),
            "--log-level: \"loud\" is not a log level (trace, debug, info, warn, error, fatal)"
        );
    }

    #[test]
    fn the_update_message_names_what_is_applied_and_what_needs_a_restart() {
        let old = MasterConfig::resolve(&FileConfig::default(), &Flags::default()).unwrap();
        let mut new = old.clone();
        new.log_level = "debug".into();
        new.data_dir = "/new/dir".into();
        new.timings.push_interval = Duration::from_millis(500);
        let ch = changes(&old, &new);
        assert_eq!(
            ch.iter().map(|c| (c.key, c.online)).collect::<Vec<_>>(),
            vec![
                ("data-dir", false),
                ("log-level", true),
                ("push-interval", true)
            ]
        );
        assert_eq!(
            update_message(&ch, &[]),
            "data-dir: changed from default.dm-master to /new/dir; takes effect after a restart; log-level: changed from info to debug (applied); push-interval: changed from 1s to 500ms (applied)"
        );
        assert_eq!(update_message(&changes(&old, &old), &[]), "");
        let file = FileConfig {
            log_level: Some("debug".into()),
            data_dir: Some("/same".into()),
            ..Default::default()
        };
        let flags = Flags {
            log_level: Some("info".into()),
            data_dir: Some("/same".into()),
            ..Default::default()
        };
        assert_eq!(
            update_message(&[], &overridden(&file, &flags)),
            "log-level: the file's value is not used: --log-level info on the command line overrides it"
        );
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(&p, "name = \"old\"\n").unwrap();
        write_atomically(&p, "name = \"new\"\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "name = \"new\"\n");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
    }
}
