//! Process logging for the binaries: tracing to stderr, level from `--log-level` or RUST_LOG;
//! colours only when stderr is a terminal (log files stay plain text).

/// Installs the subscriber once; later calls do nothing.
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},h2=warn,tonic=warn,hyper=warn,tower=warn,mysql_async=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
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
