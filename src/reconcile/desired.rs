//! Desired state: the task directory (being written; stub API).

use std::path::Path;

use super::model::{DesiredStage, DesiredState, FileError, Policy};

/// Loads every `*.yaml`/`*.yml` under `dir` (recursively) and `reconcile.yaml` at its root.
pub fn load_dir(dir: &Path) -> DesiredState {
    DesiredState {
        dir: dir.to_path_buf(),
        ..Default::default()
    }
}

/// Parses `reconcile.yaml`.
pub fn load_policy(path: &Path) -> Result<Policy, FileError> {
    let _ = path;
    Ok(Policy::default())
}

impl Policy {
    /// The desired stage of a task (first matching `tasks` entry, else running).
    pub fn stage_for(&self, task: &str) -> DesiredStage {
        let _ = task;
        DesiredStage::Running
    }

    /// Whether the task must never be stopped or reset.
    pub fn is_protected(&self, task: &str) -> bool {
        let _ = task;
        false
    }
}
