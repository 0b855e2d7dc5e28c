//! The reconciler's data model, shared by every stage: desired state (files), policy, live
//! state (master), and the plan. Everything here is plain data (serde), so a plan can be
//! saved with `plan -out FILE`, printed as versioned JSON, and applied later exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::config::changes::ChangeClass;
use crate::config::source::SourceConfig;
use crate::config::task::TaskConfig;
pub use crate::password::FINGERPRINT_COMMENT;

/// Version of the JSON schema of [`Plan`] (`--output json`, `plan -out`).
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// A task file of the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredTask {
    pub name: String,
    pub file: PathBuf,
    /// Loaded and normalised by the foundation's config model (`${ENV}` resolved).
    pub config: TaskConfig,
}

/// A source file of the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredSource {
    pub id: String,
    pub file: PathBuf,
    pub config: SourceConfig,
}

/// A file that cannot be used: what is wrong, already in `file:line:col: [code=N] …` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileError {
    pub file: PathBuf,
    pub message: String,
}

/// The directory: what the cluster should be.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    pub dir: PathBuf,
    pub tasks: BTreeMap<String, DesiredTask>,
    pub sources: BTreeMap<String, DesiredSource>,
    pub errors: Vec<FileError>,
    /// Task names that a broken file may define (a duplicate name, or a file that failed to
    /// load but whose `name:` could be read): the planner leaves these tasks alone — it never
    /// deletes them, even with prune.
    pub broken_names: BTreeSet<String>,
    pub policy: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DesiredStage {
    #[default]
    Running,
    Paused,
}

/// A per-task override of `reconcile.yaml`: `name` is a task name or a glob (`*`, `?`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPolicy {
    pub pattern: String,
    pub stage: Option<DesiredStage>,
    pub protect: bool,
}

/// `reconcile.yaml` at the directory's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Stop tasks the master has and the directory does not (default off).
    pub prune: bool,
    /// Undo drift found at a resync: resume a task paused by hand or by an error (default on).
    pub self_heal: bool,
    /// Allow stop + start --remove-meta (checkpoint lost) when a change needs it (default off).
    pub allow_reset: bool,
    pub tasks: Vec<TaskPolicy>,
    /// `--force` on the command line (not a reconcile.yaml key): stop a task even while it
    /// waits on a shard DDL lock.
    pub force: bool,
    /// `max-lag-before-stop`: before stopping a task (restart, reset, removed source), wait
    /// (up to the step timeout) until every Sync subtask is at most this far behind its
    /// upstream; None (the default): stop at once.
    pub max_lag_before_stop: Option<std::time::Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            prune: false,
            self_heal: true,
            allow_reset: false,
            tasks: Vec::new(),
            force: false,
            max_lag_before_stop: None,
        }
    }
}

/// One task on one source, as query-status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSubtask {
    pub source: String,
    /// DM's stage name: "Running", "Paused", "New", … ("" when the worker does not report it).
    pub stage: String,
    /// Set when the subtask is paused by an error: the error text.
    pub error: Option<String>,
    /// DM's unit name: "Dump", "Load", "Sync" ("" when the worker does not report it).
    #[serde(default)]
    pub unit: String,
    /// The unit's progress as query-status shows it (`42.10 %`; Sync: `synced` or none).
    #[serde(default)]
    pub progress: Option<String>,
    /// The pessimistic shard DDL lock the subtask waits on (`unresolvedDDLLockID`).
    #[serde(default)]
    pub lock: Option<String>,
}

impl LiveSubtask {
    /// `s1: Load 42.10 %` (the stage too when it is not Running: `s1: Load Finished 100.00 %`;
    /// a shard DDL lock it waits on: `s1: Sync waiting on lock task-`db`.`t``).
    pub fn phase(&self) -> String {
        let mut parts = vec![format!("{}:", self.source)];
        if !self.unit.is_empty() {
            parts.push(self.unit.clone());
        }
        if self.stage != "Running" && !self.stage.is_empty() {
            parts.push(self.stage.clone());
        }
        if let Some(p) = &self.progress {
            parts.push(p.clone());
        }
        if let Some(l) = &self.lock {
            parts.push(format!("waiting on lock {l}"));
        }
        parts.join(" ")
    }
}

/// A task the master has.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveTask {
    pub name: String,
    /// The stored config (get-config), normalised; None when it could not be read.
    pub config: Option<TaskConfig>,
    pub config_error: Option<String>,
    /// The master's fingerprint of the stored target password, under a key only the master
    /// has (`hmac-sha256:…`): opaque here, it only tells that the stored password changed
    /// (it is part of [`LiveTask::digest`]).
    pub password_fingerprint: Option<String>,
    /// The master's answer to "is the desired password the stored one?" (compared by value
    /// on the master); None when it was not asked or could not answer.
    pub password_matches: Option<bool>,
    pub subtasks: Vec<LiveSubtask>,
}

/// A source as the master has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveSource {
    /// None when get-config failed (`error`).
    pub config: Option<SourceConfig>,
    pub error: Option<String>,
    /// The master's answer to "is the desired `from` password the stored one?".
    pub password_matches: Option<bool>,
}

/// The cluster as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveState {
    pub tasks: BTreeMap<String, LiveTask>,
    /// Sources created on the master.
    pub sources: BTreeSet<String>,
    /// Their configs (sources of the directory only; the others are not compared).
    pub source_configs: BTreeMap<String, LiveSource>,
}

impl LiveTask {
    /// A digest of what the plan was made against (config and stages): a saved plan is stale
    /// when it changed.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        if let Some(c) = &self.config {
            h.update(serde_json::to_string(c).unwrap_or_default());
        }
        h.update(
            self.password_fingerprint
                .as_deref()
                .unwrap_or("")
                .split(':')
                .nth(1)
                .unwrap_or(""),
        );
        // The unit counts (a plan made during the load may differ from one made in Sync);
        // the progress does not (it changes every second).
        for s in &self.subtasks {
            h.update(format!(
                "|{}={}:{}:{}",
                s.source,
                s.stage,
                s.error.is_some(),
                s.unit
            ));
        }
        h.finalize().iter().map(|x| format!("{x:02x}")).collect()
    }
}

impl LiveState {
    /// Digest of one task's live state ("absent" when the master does not have it).
    pub fn task_digest(&self, name: &str) -> String {
        self.tasks
            .get(name)
            .map(|t| t.digest())
            .unwrap_or_else(|| "absent".into())
    }
}

/// What happens to the task's checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointFate {
    Kept,
    Lost,
    New,
    /// The task leaves the master; the downstream meta tables stay.
    Left,
}

/// One master operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Step {
    CreateSource {
        source: String,
        /// The source file, normalised, password DM-encrypted.
        yaml: String,
    },
    /// operate-source update: the source file changed (DM refuses it while tasks use the
    /// source, so the planner only plans it for a source no task uses).
    UpdateSource {
        source: String,
        /// The source file, normalised, password DM-encrypted.
        yaml: String,
        /// What changed, `key: old → new` (passwords only as `from.password: changed`).
        changes: Vec<String>,
    },
    /// start-relay / stop-relay: only the source file's `enable-relay` changed (the tasks
    /// keep running; they read the relay from their next restart).
    StartRelay {
        source: String,
    },
    StopRelay {
        source: String,
    },
    /// start-task; `sources` empty = all of the task's sources.
    StartTask {
        task: String,
        sources: Vec<String>,
        remove_meta: bool,
        /// The task file, normalised, password DM-encrypted (never plaintext in a plan).
        yaml: String,
    },
    StopTask {
        task: String,
        sources: Vec<String>,
    },
    PauseTask {
        task: String,
        sources: Vec<String>,
    },
    ResumeTask {
        task: String,
        sources: Vec<String>,
    },
    UpdateTask {
        task: String,
        yaml: String,
    },
}

/// The plan for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPlan {
    pub task: String,
    /// The strongest class among the changes.
    pub class: ChangeClass,
    pub steps: Vec<Step>,
    /// Why: the changed fields (e.g. `block-allow-list.shop-only.do-dbs`), or the stage drift.
    pub fields: Vec<String>,
    /// One line a person reads first.
    pub summary: String,
    pub checkpoint: CheckpointFate,
    /// Things the user cannot see otherwise (no back-fill, checkpoint loss, meta ignored…).
    pub warnings: Vec<String>,
    /// Set when the change is needed but not allowed (reset without allow-reset, protected
    /// task, …): no steps then.
    pub refused: Option<String>,
    /// Differences that need nothing (deprecated keys DM ignores, password spelling).
    pub ignored: Vec<String>,
    /// Unified YAML diff live → desired, passwords masked.
    pub diff: String,
    /// [`LiveState::task_digest`] at plan time.
    pub live_digest: String,
    /// The file the desired task came from (None for a delete).
    pub file: Option<PathBuf>,
    /// Where each live subtask is (`s1: Load 42.10 %`), as `plan` prints it beside the task.
    #[serde(default)]
    pub phase: Vec<String>,
}

/// The plan for a whole directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub dir: PathBuf,
    /// Source steps (operate-source create) run before task steps.
    pub sources: Vec<Step>,
    /// Every task of the directory or the master, no-ops included, in name order.
    pub tasks: Vec<TaskPlan>,
    pub errors: Vec<FileError>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.sources.is_empty() || self.tasks.iter().any(|t| !t.steps.is_empty())
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}
