//! What the Dump and Load units share: the dump directory, its file names, DM's `metadata`
//! file, dm-rs's own dump progress record, and the feed through which a running dump hands
//! finished files to a load running beside it.
//!
//! Layout of a dump directory (`loaders.dir` of the instance, which the config check already
//! suffixed with `.<task>`): DM v2's (dumpling's) names — `{db}-schema-create.sql`,
//! `{db}.{tbl}-schema.sql`, `{db}.{view}-schema-view.sql`, `{db}.{tbl}.{chunk}.sql` — names
//! escaped as dumpling does ([`naming`]), and `metadata` in DM's format ([`metadata`]), written
//! last. Beside them dm-rs keeps [`STATE_FILE`] ([`DumpState`]): the dump sessions (a dump
//! interrupted by a pause or a crash continues in a new session with a new snapshot and keeps
//! the chunks it finished) and, per table, the session whose snapshot its chunks come from.
//!
//! A chunk is written as `<name>.tmp` and renamed when complete, so a file with a final name
//! is always whole. In `all` and `full` modes the subtask runs Dump and Load side by side: the
//! dump announces each finished file on the [`Feed`] and the load starts on it at once.

pub mod metadata;
pub mod naming;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::task::TaskConfig;

/// dm-rs's dump progress record in the dump directory.
pub const STATE_FILE: &str = "dm-rs-dump.json";
/// DM's metadata file name.
pub const METADATA_FILE: &str = "metadata";

/// A binlog location as a dump records it (file, position, GTID set text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogLoc {
    pub file: String,
    pub pos: u64,
    /// MariaDB's `@@global.gtid_binlog_pos` at the same moment (may be empty).
    pub gtid: String,
}

impl BinlogLoc {
    pub fn position(&self) -> crate::binlog::Position {
        crate::binlog::Position {
            file: self.file.clone(),
            pos: self.pos,
        }
    }
}

/// One dump session: a consistent snapshot and the binlog location it was taken at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// 1, 2, … in the order the sessions ran.
    pub id: u32,
    /// Where the binlog was while every dump connection opened its snapshot.
    pub loc: BinlogLoc,
    /// RFC 3339 time the session started.
    pub started: String,
    /// With `--consistency none` (no lock): the location read again after every dump
    /// connection had opened its snapshot, the upper bound of the session's snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<BinlogLoc>,
}

/// What dm-rs knows about one table's dump.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDump {
    /// The session whose snapshot the table's first finished chunk comes from (its binlog
    /// location is where the sync unit starts applying this table's events).
    pub session: u32,
    /// The chunk files finished so far (final names), with their sizes.
    pub files: BTreeMap<String, u64>,
    /// All chunks of the table are written.
    pub done: bool,
    /// The table's chunk plan, fixed the first time the table is planned, so that a later
    /// session dumps exactly the same ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<ChunkPlan>,
    /// Finished chunks (index in the plan) → the session that wrote them.
    #[serde(default)]
    pub chunks: BTreeMap<u32, u32>,
    /// Rows in the finished chunks.
    #[serde(default)]
    pub rows: u64,
    /// The dumped columns, in order (a later session refuses a table whose columns changed).
    #[serde(default)]
    pub columns: Vec<String>,
}

/// How a table is cut into chunks (dumpling's integer-key ranges).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkPlan {
    /// The integer key column the ranges are on; `None`: one chunk, the whole table.
    pub key: Option<String>,
    /// Ascending cut points (decimal integers): chunk 0 is `key < b[0] OR key IS NULL`,
    /// chunk i is `b[i-1] <= key < b[i]`, the last chunk `key >= b[n-1]`. No cut points:
    /// one chunk.
    pub bounds: Vec<String>,
}

impl ChunkPlan {
    /// The number of chunks.
    pub fn chunks(&self) -> u32 {
        if self.key.is_none() {
            1
        } else {
            self.bounds.len() as u32 + 1
        }
    }
}

/// The dump progress record ([`STATE_FILE`], JSON), rewritten (write + rename) after every
/// finished chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpState {
    /// Random id of this dump (a new dump directory, or one after `--remove-meta`, gets a new
    /// one); the load unit records it to notice files from a different dump.
    pub dump_id: String,
    /// The `--remove-meta` token the dump was started under (a new token starts a new dump).
    pub reset_token: Option<String>,
    pub sessions: Vec<Session>,
    /// `db.table` (unescaped, `db` and `table` joined with a tab) → its dump.
    pub tables: BTreeMap<String, TableDump>,
    /// Every table is dumped and `metadata` is written.
    pub done: bool,
    /// Schema files written (`-schema-create.sql`, `-schema.sql`, `-schema-view.sql`) →
    /// their sizes.
    #[serde(default)]
    pub schema_files: BTreeMap<String, u64>,
    /// The source whose dump this is: a directory one source's dump owns is refused to
    /// another (empty in dumps written before it was recorded).
    #[serde(default)]
    pub source: String,
}

impl DumpState {
    /// The key of a table in [`DumpState::tables`].
    pub fn key(db: &str, table: &str) -> String {
        format!("{db}\t{table}")
    }

    pub fn session(&self, id: u32) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }

    /// Reads the record from a dump directory (`None` when there is none).
    pub fn read(dir: &Path) -> std::io::Result<Option<DumpState>> {
        match std::fs::read(dir.join(STATE_FILE)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the record atomically (temp file, fsync, rename).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let data = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(STATE_FILE))
    }
}

/// A file the dump has finished, announced to the load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyFile {
    /// The file's name in the dump directory.
    pub name: String,
    pub size: u64,
}

/// What a running dump has handed over so far.
#[derive(Debug, Clone, Default)]
pub struct FeedState {
    /// A dump is running beside the load (the load follows the feed instead of reading the
    /// directory once).
    pub live: bool,
    /// Finished files in the order written: every `-schema-create.sql` and `-schema.sql`
    /// (and `-schema-view.sql`) before any data file of its table.
    pub ready: Vec<ReadyFile>,
    /// The dump finished (all files ready, `metadata` written).
    pub done: bool,
    /// The dump stopped with an error or was cancelled: the load stops too after the files
    /// it has.
    pub stopped: bool,
}

/// The dump → load hand-over channel of one subtask (lives in [`crate::worker::units::Shared`]).
/// Clones are handles on the same channel (a unit keeps one for its run).
#[derive(Clone)]
pub struct Feed {
    tx: watch::Sender<FeedState>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: watch::channel(FeedState::default()).0,
        }
    }
}

impl Feed {
    /// Starts a new side-by-side run: empty, live.
    pub fn start_live(&self) {
        self.tx.send_replace(FeedState {
            live: true,
            ..FeedState::default()
        });
    }
    /// No dump runs (the load reads the directory as it is).
    pub fn clear(&self) {
        self.tx.send_replace(FeedState::default());
    }
    /// The dump finished a file.
    pub fn push(&self, f: ReadyFile) {
        self.tx.send_modify(|s| s.ready.push(f));
    }
    /// The dump finished everything.
    pub fn finish(&self) {
        self.tx.send_modify(|s| s.done = true);
    }
    /// The dump ended without finishing (error or cancel).
    pub fn stop(&self) {
        self.tx.send_modify(|s| s.stopped = true);
    }
    pub fn subscribe(&self) -> watch::Receiver<FeedState> {
        self.tx.subscribe()
    }
    pub fn snapshot(&self) -> FeedState {
        self.tx.borrow().clone()
    }
}

/// The dump directory of a task's instance: its `loaders.dir` (already `.<task>`-suffixed by
/// the config check), relative to the worker's working directory as in DM.
pub fn dump_dir(task: &TaskConfig, source_id: &str) -> PathBuf {
    let dir = task
        .instances()
        .find(|i| i.source_id == source_id)
        .and_then(|i| i.loader.as_ref())
        .map(|l| l.dir.clone())
        .unwrap_or_else(|| format!("./dumped_data.{}", task.name));
    PathBuf::from(dir)
}
