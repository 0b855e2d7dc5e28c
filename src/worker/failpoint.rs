//! Crash points for the fault tests: `DMRS_FAILPOINTS=name[,name…]` in a dm-worker's
//! environment makes it abort (as a kill -9 would leave things) when it reaches a named
//! point. Names: `sync-after-ddl` (a DDL has run downstream, its checkpoint is not saved
//! yet). Without the variable a point costs one environment lookup on a rare path.

/// Aborts the process when `name` is in `DMRS_FAILPOINTS`.
pub fn hit(name: &str) {
    if let Ok(list) = std::env::var("DMRS_FAILPOINTS")
        && list.split(',').any(|n| n.trim() == name)
    {
        tracing::error!(failpoint = name, "failpoint reached: aborting the process");
        std::process::abort();
    }
}
