//! Process logging for the binaries: tracing to stderr (or a log file), level from
//! `--log-level` or RUST_LOG; colours only when stderr is a terminal (log files stay plain
//! text). dm-master's level can change while it runs ([`LogHandle`], update-master-config).

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The levels `--log-level` and dm-master's `log-level` take (DM's zap levels; `fatal` is
/// read as `error`).
pub const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "fatal"];

/// The tracing level of a DM log level word (case-insensitive), or None when it is not one.
pub fn level_name(level: &str) -> Option<&'static str> {
    match level.to_ascii_lowercase().as_str() {
        "trace" => Some("trace"),
        "debug" => Some("debug"),
        "info" => Some("info"),
        "warn" | "warning" => Some("warn"),
        "error" | "fatal" => Some("error"),
        _ => None,
    }
}

/// The filter for `level`: our crate at that level, the noisy libraries at warn.
fn filter(level: &str) -> EnvFilter {
    let level = level_name(level).unwrap_or("info");
    EnvFilter::new(format!(
        "{level},h2=warn,tonic=warn,hyper=warn,tower=warn,mysql_async=warn"
    ))
}

/// Installs the subscriber once; later calls do nothing.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Changes the level of the log [`init_reloadable`] installed.
#[derive(Clone)]
pub struct LogHandle(tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>);

impl LogHandle {
    /// Logs at `level` from now on (RUST_LOG, if it was set at the start, no longer applies).
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        self.0
            .reload(filter(level))
            .map_err(|e| format!("can not change the log level: {e}"))
    }
}

/// Installs the subscriber with a level that can change later: to `file` (appended to,
/// created 0600 if missing) or to stderr. RUST_LOG, when set, wins over `level` at the start.
pub fn init_reloadable(level: &str, file: Option<&Path>) -> Result<LogHandle, String> {
    let initial = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter(level));
    let (layer, handle) = tracing_subscriber::reload::Layer::new(initial);
    let fmt = tracing_subscriber::fmt::layer();
    let fmt = match file {
        Some(path) => {
            let mut opts = std::fs::OpenOptions::new();
            opts.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let f = opts
                .open(path)
                .map_err(|e| format!("log-file {}: {e}", path.display()))?;
            fmt.with_writer(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
                std::sync::Mutex::new(f),
            ))
            .with_ansi(false)
        }
        None => fmt
            .with_writer(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
                std::io::stderr,
            ))
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    };
    tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init()
        .map_err(|e| format!("can not install the log: {e}"))?;
    Ok(LogHandle(handle))
}

/// DM's binaries take Go-style single-dash long flags (`-master-addr`); clap wants two dashes.
pub fn long_flags(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let long = a.len() > 2 && a.starts_with('-') && !a.starts_with("--");
            if i > 0 && long && a.as_bytes()[1].is_ascii_alphabetic() {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dm_level_words_map_to_tracing_levels() {
        let cases = [
            ("info", Some("info")),
            ("DEBUG", Some("debug")),
            ("warn", Some("warn")),
            ("warning", Some("warn")),
            ("fatal", Some("error")),
            ("trace", Some("trace")),
            ("verbose", None),
            ("", None),
        ];
        for (w, want) in cases {
            assert_eq!(level_name(w), want, "{w}");
        }
    }
}
