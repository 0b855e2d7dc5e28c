//! Fault points for the fault tests, from `DMRS_FAILPOINTS=name[,name…]` in a dm-worker's
//! environment:
//!
//! - crash points ([`hit`]): the process aborts (as a kill -9 would leave things) when it
//!   reaches the point. `sync-after-ddl` (a DDL has run downstream, its checkpoint is not
//!   saved yet), `sync-before-save` (the apply queues committed rows past the global point,
//!   which is not saved yet).
//! - delay points ([`delay`]), written `name=MILLIS`: the unit waits that long each time it
//!   passes, so a test can act in the middle of a phase. `dump-chunk` (before each dump chunk),
//!   `load-statement` (before each loaded statement), `load-index` (a deferred index build
//!   first runs `DO SLEEP` that long on its connection, killable as the build itself is),
//!   `load-index-check` (how often a running index build is checked for, instead of 30 s),
//!   `load-create` (before each CREATE TABLE of the load's schema lane; a pause or stop ends
//!   the wait).
//!
//! Without the variable a point costs one environment lookup.

/// Aborts the process when `name` is in `DMRS_FAILPOINTS`.
pub fn hit(name: &str) {
    if let Ok(list) = std::env::var("DMRS_FAILPOINTS")
        && list.split(',').any(|n| n.trim() == name)
    {
        tracing::error!(failpoint = name, "failpoint reached: aborting the process");
        std::process::abort();
    }
}

/// The delay `name=MILLIS` in `list` asks for.
fn delay_in(list: &str, name: &str) -> Option<std::time::Duration> {
    list.split(',').find_map(|n| {
        let (k, v) = n.trim().split_once('=')?;
        (k == name)
            .then(|| v.parse::<u64>().ok())
            .flatten()
            .map(std::time::Duration::from_millis)
    })
}

/// The delay `name=MILLIS` in `DMRS_FAILPOINTS` asks for.
pub fn delay_of(name: &str) -> Option<std::time::Duration> {
    static LIST: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let list = LIST.get_or_init(|| std::env::var("DMRS_FAILPOINTS").ok());
    list.as_deref().and_then(|l| delay_in(l, name))
}

/// Waits when `name=MILLIS` is in `DMRS_FAILPOINTS`.
pub async fn delay(name: &str) {
    if let Some(d) = delay_of(name) {
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn delays_are_read_by_name() {
        let cases = [
            ("load-statement=50", "load-statement", Some(50)),
            (
                "sync-after-ddl, load-statement=7",
                "load-statement",
                Some(7),
            ),
            ("load-statement", "load-statement", None),
            ("load-statement=x", "load-statement", None),
            ("dump-chunk=5", "load-statement", None),
        ];
        for (list, name, want) in cases {
            assert_eq!(
                super::delay_in(list, name).map(|d| d.as_millis() as u64),
                want,
                "{list}"
            );
        }
    }
}
