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
//! A finished chunk is appended to [`JOURNAL_FILE`] ([`ChunkDone`], one JSON line, made
//! durable before its files are announced) instead of rewriting the whole record, which is
//! rewritten (and the journal emptied) only when the journal has grown past it: rewriting it
//! per chunk made a dump of many tables quadratic (a record of 10 000 tables is megabytes).
//! [`DumpState::read`] replays the journal; a torn last line (a crash mid-append, never
//! acknowledged) is ignored, and a chunk already in the record is not applied twice.
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
/// The chunks finished since [`STATE_FILE`] was last written whole (JSON lines).
pub const JOURNAL_FILE: &str = "dm-rs-dump.journal";
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

/// The dump progress record ([`STATE_FILE`], JSON, written whole with write + rename) with the
/// chunks finished since in [`JOURNAL_FILE`].
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

    /// Reads the record from a dump directory (`None` when there is none), with the chunks of
    /// its journal applied.
    pub fn read(dir: &Path) -> std::io::Result<Option<DumpState>> {
        let mut st: DumpState = match std::fs::read(dir.join(STATE_FILE)) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match std::fs::read(dir.join(JOURNAL_FILE)) {
            Ok(j) => st.replay(&j)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Some(st))
    }

    /// Applies a journal's lines. The last line may be torn (no newline, or not JSON): it
    /// was never acknowledged and is ignored; any other bad line is an error.
    pub fn replay(&mut self, journal: &[u8]) -> std::io::Result<()> {
        let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
        let mut rest = journal;
        let mut n = 0;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            n += 1;
            let line = &rest[..end];
            rest = &rest[end + 1..];
            let c: ChunkDone = match serde_json::from_slice(line) {
                Ok(c) => c,
                Err(_) if rest.is_empty() => break,
                Err(e) => return Err(bad(format!("{JOURNAL_FILE} line {n}: {e}"))),
            };
            if let Applied::UnknownTable = self.apply(&c) {
                return Err(bad(format!(
                    "{JOURNAL_FILE} line {n}: table {} is not in {STATE_FILE}",
                    c.table.replace('\t', ".")
                )));
            }
        }
        Ok(())
    }

    /// Records a finished chunk (what the dump journals, and what [`DumpState::replay`]
    /// applies again).
    pub fn apply(&mut self, c: &ChunkDone) -> Applied {
        let Some(td) = self.tables.get_mut(&c.table) else {
            return Applied::UnknownTable;
        };
        if td.chunks.contains_key(&c.chunk) {
            return Applied::Again;
        }
        if td.chunks.is_empty() {
            td.session = c.session;
        }
        td.chunks.insert(c.chunk, c.session);
        for (name, size) in &c.files {
            td.files.insert(name.clone(), *size);
        }
        td.rows += c.rows;
        let table_done = td.chunks.len() as u32 >= c.chunks && !td.done;
        if table_done {
            td.done = true;
        }
        Applied::New { table_done }
    }

    /// Writes the record whole and atomically (temp file, fsync, rename), then removes the
    /// journal (its chunks are in the record) and fsyncs the directory. Returns the record's
    /// size.
    pub fn write(&self, dir: &Path) -> std::io::Result<u64> {
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let data = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(STATE_FILE))?;
        match std::fs::remove_file(dir.join(JOURNAL_FILE)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::File::open(dir)?.sync_all()?;
        Ok(data.len() as u64)
    }
}

/// One finished chunk, as [`JOURNAL_FILE`] records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkDone {
    /// The table's key in [`DumpState::tables`].
    pub table: String,
    /// The chunk's index in the table's plan.
    pub chunk: u32,
    /// The session that wrote it.
    pub session: u32,
    /// Its files (final names) with their sizes.
    pub files: Vec<(String, u64)>,
    pub rows: u64,
    /// The table's number of chunks.
    pub chunks: u32,
}

/// What [`DumpState::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Recorded; `table_done`: it was the table's last chunk.
    New { table_done: bool },
    /// The chunk was recorded already (a journal replayed over a record that has it).
    Again,
    /// The record has no such table.
    UnknownTable,
}

/// Appends `c` to the journal in `dir` and makes it durable (the directory too when the
/// journal is new). Returns the journal's size.
pub fn journal_append(dir: &Path, c: &ChunkDone) -> std::io::Result<u64> {
    use std::io::Write;
    let mut line = serde_json::to_vec(c).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(JOURNAL_FILE))?;
    let before = f.metadata()?.len();
    f.write_all(&line)?;
    f.sync_data()?;
    if before == 0 {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(before + line.len() as u64)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A record with table `d.t` planned into `chunks` chunks.
    fn state(chunks: u32) -> DumpState {
        let mut st = DumpState::default();
        st.tables.insert(
            DumpState::key("d", "t"),
            TableDump {
                plan: Some(ChunkPlan {
                    key: Some("id".into()),
                    bounds: (1..chunks).map(|b| (b * 10).to_string()).collect(),
                }),
                ..TableDump::default()
            },
        );
        st
    }

    fn done(chunk: u32, session: u32, rows: u64) -> ChunkDone {
        ChunkDone {
            table: DumpState::key("d", "t"),
            chunk,
            session,
            files: vec![(format!("d.t.{chunk:013}.sql"), 100 + chunk as u64)],
            rows,
            chunks: 2,
        }
    }

    fn line(c: &ChunkDone) -> String {
        format!("{}\n", serde_json::to_string(c).unwrap())
    }

    /// Chunks applied in order, the results expected, then the table's rows, done and session.
    type ApplyCase = (Vec<ChunkDone>, Vec<Applied>, u64, bool, u32);

    #[test]
    fn apply_records_a_chunk_once() {
        let cases: Vec<ApplyCase> = vec![
            (
                vec![done(0, 1, 5)],
                vec![Applied::New { table_done: false }],
                5,
                false,
                1,
            ),
            (
                vec![done(1, 2, 5), done(0, 3, 7)],
                vec![
                    Applied::New { table_done: false },
                    Applied::New { table_done: true },
                ],
                12,
                true,
                2,
            ),
            (
                vec![done(0, 1, 5), done(0, 1, 5), done(1, 1, 4), done(1, 1, 4)],
                vec![
                    Applied::New { table_done: false },
                    Applied::Again,
                    Applied::New { table_done: true },
                    Applied::Again,
                ],
                9,
                true,
                1,
            ),
        ];
        for (chunks, want, rows, is_done, session) in cases {
            let mut st = state(2);
            let got: Vec<Applied> = chunks.iter().map(|c| st.apply(c)).collect();
            assert_eq!(got, want, "{chunks:?}");
            let td = &st.tables[&DumpState::key("d", "t")];
            assert_eq!((td.rows, td.done, td.session), (rows, is_done, session));
            assert_eq!(td.files.len(), td.chunks.len());
        }
        let mut other = done(0, 1, 1);
        other.table = DumpState::key("d", "u");
        assert_eq!(state(2).apply(&other), Applied::UnknownTable);
    }

    #[test]
    fn replay_ignores_only_a_torn_last_line() {
        let (a, b) = (line(&done(0, 1, 5)), line(&done(1, 1, 4)));
        // (journal, Ok(rows) or Err)
        let cases: Vec<(String, Result<u64, ()>)> = vec![
            (String::new(), Ok(0)),
            (a.clone(), Ok(5)),
            (format!("{a}{b}"), Ok(9)),
            (format!("{a}{a}{b}"), Ok(9)),
            // a crash mid-append: no newline yet
            (format!("{a}{}", &b[..b.len() / 2]), Ok(5)),
            (format!("{a}\0\0\0\0"), Ok(5)),
            // a complete last line that is not JSON: never acknowledged either
            (format!("{a}{{\"table\n"), Ok(5)),
            // a bad line before good ones is damage
            (format!("{{\"table\n{a}"), Err(())),
            (format!("{a}not json\n{b}"), Err(())),
        ];
        for (journal, want) in cases {
            let mut st = state(2);
            let got = st
                .replay(journal.as_bytes())
                .map(|()| st.tables[&DumpState::key("d", "t")].rows)
                .map_err(|_| ());
            assert_eq!(got, want, "{journal:?}");
        }
        let mut st = state(2);
        let mut other = done(0, 1, 1);
        other.table = DumpState::key("d", "u");
        let e = st.replay(line(&other).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("d.u is not in"), "{e}");
    }

    #[test]
    fn read_applies_the_journal_and_write_folds_it_in() {
        let dir = tempfile::tempdir().unwrap();
        let st = state(2);
        let whole = st.write(dir.path()).unwrap();
        assert!(whole > 0);
        assert_eq!(DumpState::read(dir.path()).unwrap(), Some(st.clone()));
        let first = journal_append(dir.path(), &done(0, 1, 5)).unwrap();
        let second = journal_append(dir.path(), &done(1, 1, 4)).unwrap();
        assert!(second > first && first > 0);
        let mut want = st.clone();
        want.apply(&done(0, 1, 5));
        want.apply(&done(1, 1, 4));
        let read = DumpState::read(dir.path()).unwrap().unwrap();
        assert_eq!(read, want);
        assert!(read.tables[&DumpState::key("d", "t")].done);
        // folding: the record has the chunks, the journal is gone, the read is the same
        read.write(dir.path()).unwrap();
        assert!(!dir.path().join(JOURNAL_FILE).exists());
        assert_eq!(DumpState::read(dir.path()).unwrap(), Some(want.clone()));
        // a journal left over a record that already has its chunks changes nothing
        journal_append(dir.path(), &done(0, 1, 5)).unwrap();
        assert_eq!(DumpState::read(dir.path()).unwrap(), Some(want));
        assert_eq!(DumpState::read(&dir.path().join("none")).unwrap(), None);
    }
}
