//! Field-by-field comparison of normalised task configs (being written; stub API).

use crate::config::task::TaskConfig;

use super::model::LiveTask;

/// What differs between a desired config and the live task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldDiff {
    /// Changed fields, as paths (`block-allow-list.shop-only.do-dbs`, `mysql-instances[0].syncer.worker-count`).
    pub changed: Vec<String>,
    /// Differences that need nothing (deprecated keys DM ignores, password spelling).
    pub ignored: Vec<String>,
    /// The target password differs by value.
    pub password_changed: bool,
}

pub fn compare(desired: &TaskConfig, live: &LiveTask) -> FieldDiff {
    let _ = (desired, live);
    FieldDiff::default()
}

/// Unified YAML diff live → desired, passwords masked.
pub fn unified(desired: Option<&TaskConfig>, live: Option<&TaskConfig>) -> String {
    let _ = (desired, live);
    String::new()
}
