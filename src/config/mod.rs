//! DM's configuration model: task files (`task.yaml`) and source files (`source.yaml`).
//!
//! Every task file goes through here — `dmctl check-task`, the master when it stores a task, the
//! worker when it runs one, and the reconciler when it diffs desired against live state — so the
//! rules are DM's own: the same keys and defaults, unknown keys refused (code 20003), DM's checks
//! in DM's order with DM's error codes. Each error also names the file, line and column.
//! Passwords may be DM ciphertext, plaintext or `${ENV}` references (resolved at load time); the
//! normalised YAML this module prints always shows them as `******`.
//!
//! This module does no network I/O and never prints a password.

pub mod changes;
pub mod error;
pub mod source;
pub mod task;
pub mod yaml;

use std::path::Path;

use serde::de::DeserializeOwned;

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
    let text = yaml::text_of(bytes)?;
    let ix = PosIndex::build(text);
    let blank = yaml::is_blank(text);
    let mut config: T = if blank {
        T::default()
    } else {
        yaml::decode(text, T::WHAT)?
    };
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
