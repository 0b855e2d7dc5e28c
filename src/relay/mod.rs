//! The relay log: a source's binlog kept on its worker (DM's relay unit, part A of the fact
//! sheet), so every task of the source reads the upstream once, and a task can fall behind
//! past the upstream's binlog expiry without losing its place.
//!
//! One [`Relay`] per bound source, started when the source says `enable-relay: true` or the
//! master says so (`start-relay`), paused and resumed by `pause-relay` / `resume-relay`. Its
//! writer reads the upstream's binlog as a replica (its own server id) and appends every event,
//! byte for byte at the upstream's offsets, to files of the upstream's names in DM's layout
//! ([`files`]): a position in the relay is the same position upstream, so the sync unit's
//! checkpoints mean the same thing whether it reads the relay ([`reader::LocalSource`],
//! `binlogType: local`) or the upstream (`remote`).
//!
//! Start point: `relay-binlog-name` (at 4), else the file `relay-binlog-gtid` falls in (MariaDB's
//! `BINLOG_GTID_POS`, at 4), else the upstream's current file (at 4); then, on every start, the
//! meta of the newest sub-directory when the upstream is the same server, after cutting its
//! last file back to a complete transaction ([`files::recover`]). A different server (or
//! none yet) starts a new sub-directory.
//!
//! Events: heartbeats and artificial events are not written; the first (fake) ROTATE names
//! the file; a FormatDescription starts a file that does not exist yet (magic + FDE); a real
//! ROTATE is written and names the next file; an event already in the file (a resend) is
//! compared and skipped; a hole is an error (the relay always starts at a file's beginning or
//! at its own end, so one means the upstream is not what the relay holds). Each transaction's
//! bytes are written as it ends; every second the file is fsynced and then `relay.meta`
//! written (atomically) at the last transaction boundary.
//!
//! Errors: connection errors retry with a backoff (the status shows the error); others pause
//! the relay with the error in its status (`resume-relay` starts it again).

pub mod files;
pub mod reader;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_common::binlog::consts::BinlogVersion;
use tokio_util::sync::CancellationToken;

use crate::binlog::{Position, StartAt};
use crate::config::CONNECT_TIMEOUT;
use crate::config::source::SourceConfig;
use crate::pb;
use files::{ARTIFICIAL, Layout, Meta, TxnEdge, types};

/// Where a worker keeps its relay for the subtasks' units (empty when relay is off).
pub type Slot = Arc<Mutex<Option<Arc<Relay>>>>;

/// The relay in `slot`, if any.
pub fn in_slot(slot: &Slot) -> Option<Arc<Relay>> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// How often the written bytes are fsynced and `relay.meta` saved.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the upstream's position is read for the status.
const MASTER_EVERY: Duration = Duration::from_secs(2);
/// A stream silent this long (no event, no heartbeat) is broken.
const READ_DEADLINE: Duration = Duration::from_secs(15);
/// The heartbeat the relay asks the upstream for.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The relay's stage, as DM shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayStage {
    Running,
    Paused,
    Stopped,
}

impl RelayStage {
    pub fn to_pb(self) -> pb::Stage {
        match self {
            RelayStage::Running => pb::Stage::Running,
            RelayStage::Paused => pb::Stage::Paused,
            RelayStage::Stopped => pb::Stage::Stopped,
        }
    }
}

#[derive(Debug, Clone)]
struct State {
    stage: RelayStage,
    /// The last error (retrying, or the reason of a pause).
    error: Option<String>,
    /// The sub-directory being written.
    subdir: String,
    /// The end of the last complete transaction written.
    relay: Option<Position>,
    relay_gtid: String,
    master: Option<Position>,
    master_gtid: String,
    /// switch-relay-master: the revision carried out (read from [`SWITCH_FILE`]) and the one
    /// asked for.
    switch_done: Option<u64>,
    switch_wanted: u64,
    /// migrate-relay: the revision carried out (read from [`MIGRATE_FILE`]) and the one asked
    /// for, with its position.
    migrate_done: Option<u64>,
    migrate_wanted: Option<(u64, Position)>,
}

/// Where the relay keeps the migrate-relay revision it carried out.
pub const MIGRATE_FILE: &str = "dm-rs.migrate-rev";

/// Where the relay keeps the switch-relay-master revision it carried out.
pub const SWITCH_FILE: &str = "dm-rs.switch-rev";

/// A relay failure: retried when `retry`.
#[derive(Debug)]
struct Failure {
    msg: String,
    retry: bool,
}

fn fail(msg: impl Into<String>) -> Failure {
    Failure {
        msg: msg.into(),
        retry: false,
    }
}

fn up(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        msg: format!("[code=30015] {what}: {e}"),
        retry: true,
    }
}

/// One source's relay log on this worker.
pub struct Relay {
    pub source_id: String,
    /// The relay directory (index and sub-directories).
    pub root: PathBuf,
    cfg: Arc<SourceConfig>,
    state: Mutex<State>,
    run: Mutex<Option<(CancellationToken, tokio::task::JoinHandle<()>)>>,
    /// Serialises purges (DM's 30035/30036).
    purging: tokio::sync::Mutex<()>,
}

/// The relay directory of `cfg` on worker `worker`: `<relay-dir>/<worker>` (DM v5.4's
/// per-worker layout; a relative `relay-dir` is under the worker's working directory).
pub fn relay_root(cfg: &SourceConfig, worker: &str) -> PathBuf {
    let base = if cfg.relay_dir.is_empty() {
        "relay-dir"
    } else {
        cfg.relay_dir.as_str()
    };
    Path::new(base).join(worker)
}

impl Relay {
    /// A relay for `cfg` on worker `worker`, not started.
    pub fn new(cfg: Arc<SourceConfig>, worker: &str) -> Arc<Relay> {
        Arc::new(Relay {
            source_id: cfg.source_id.clone(),
            root: relay_root(&cfg, worker),
            cfg,
            state: Mutex::new(State {
                stage: RelayStage::Stopped,
                error: None,
                subdir: String::new(),
                relay: None,
                relay_gtid: String::new(),
                master: None,
                master_gtid: String::new(),
                switch_done: None,
                switch_wanted: 0,
                migrate_done: None,
                migrate_wanted: None,
            }),
            run: Mutex::new(None),
            purging: tokio::sync::Mutex::new(()),
        })
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stage(&self) -> RelayStage {
        self.st().stage
    }

    /// The revision of a switch or migrate carried out, kept in `file` under the relay root.
    fn rev_done(&self, file: &str) -> u64 {
        std::fs::read_to_string(self.root.join(file))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Records that the revision `rev` of a switch or migrate is carried out.
    fn mark_rev_done(&self, file: &str, rev: u64) -> Result<(), Failure> {
        files::write_atomic(&self.root.join(file), rev.to_string().as_bytes())
            .map_err(|e| fail(format!("[code=30006] {e}")))
    }

    /// The master's switch-relay-master revision: one above the revision carried out makes
    /// the next start begin a new sub-directory after the relay's last GTID.
    pub fn request_switch(&self, rev: u64) {
        let mut s = self.st();
        if s.switch_done.is_none() {
            s.switch_done = Some(self.rev_done(SWITCH_FILE));
        }
        s.switch_wanted = rev;
    }

    /// The master's migrate-relay revision and position: one above the revision carried out
    /// makes the next start begin a new sub-directory at the position.
    pub fn request_migrate(&self, rev: u64, file: &str, pos: u64) {
        let mut s = self.st();
        if s.migrate_done.is_none() {
            s.migrate_done = Some(self.rev_done(MIGRATE_FILE));
        }
        s.migrate_wanted = Some((
            rev,
            Position {
                file: file.to_string(),
                pos,
            },
        ));
    }

    fn migrate_pending(&self) -> Option<(u64, Position)> {
        let s = self.st();
        s.migrate_wanted
            .clone()
            .filter(|(rev, _)| *rev > s.migrate_done.unwrap_or(0))
    }

    fn switch_pending(&self) -> Option<u64> {
        let s = self.st();
        (s.switch_wanted > s.switch_done.unwrap_or(0)).then_some(s.switch_wanted)
    }

    /// Paused by an error (not by pause-relay).
    pub fn failed(&self) -> bool {
        let s = self.st();
        s.stage == RelayStage::Paused && s.error.is_some()
    }

    /// The source config it runs with.
    pub fn config(&self) -> &SourceConfig {
        &self.cfg
    }

    /// Starts the writer (Running); a no-op when it runs.
    pub fn start(self: &Arc<Self>) {
        let mut run = self.run.lock().unwrap_or_else(|p| p.into_inner());
        if run.as_ref().is_some_and(|(_, h)| !h.is_finished()) {
            return;
        }
        let cancel = CancellationToken::new();
        {
            let mut s = self.st();
            s.stage = RelayStage::Running;
            s.error = None;
        }
        let me = self.clone();
        let c = cancel.clone();
        let span = tracing::info_span!("relay", source = %self.source_id);
        let h = tokio::spawn(tracing::Instrument::instrument(
            async move { me.run_loop(c).await },
            span,
        ));
        *run = Some((cancel, h));
        tracing::info!(source = %self.source_id, dir = %self.root.display(), "relay started");
    }

    fn halt(&self, stage: RelayStage) {
        if let Some((c, _)) = self.run.lock().unwrap_or_else(|p| p.into_inner()).take() {
            c.cancel();
        }
        let mut s = self.st();
        if s.stage != stage {
            tracing::info!(source = %self.source_id, ?stage, "relay halted");
        }
        s.stage = stage;
    }

    /// `pause-relay`: the writer stops, the files stay; readers wait at the end.
    pub fn pause(&self) {
        self.halt(RelayStage::Paused);
    }

    /// `stop-relay` (or the source unbound): as a pause, stage Stopped.
    pub fn stop(&self) {
        self.halt(RelayStage::Stopped);
    }

    /// The sub-directory being written (absolute or relative as the root is).
    pub fn current_dir(&self) -> Option<PathBuf> {
        let s = self.st();
        (!s.subdir.is_empty()).then(|| self.root.join(&s.subdir))
    }

    /// Whether the relay's current sub-directory holds `p` for a reader at GTID set `gtid`:
    /// the file is there and reaches `p`, and — in a sub-directory begun by
    /// switch-relay-master — the reader is past the set it starts after (else `p` is a
    /// position of the server before the switch).
    pub fn holds(&self, p: &Position, gtid: &str) -> Result<PathBuf, String> {
        let dir = self
            .current_dir()
            .ok_or("the relay has not started writing yet")?;
        // Past the set, not at it: a checkpoint exactly at the switch point may be a position
        // of either server.
        if let Ok(start) = std::fs::read_to_string(dir.join(files::START_GTID))
            && (!gtid_reached(gtid, start.trim()) || gtid_reached(start.trim(), gtid))
        {
            return Err(format!(
                "the relay's sub-directory {} starts after GTID {} which the reader ({gtid}) has not reached",
                dir.display(),
                start.trim()
            ));
        }
        let len = std::fs::metadata(dir.join(&p.file))
            .map_err(|_| format!("the relay does not hold {} (in {})", p.file, dir.display()))?
            .len();
        if len < p.pos {
            return Err(format!(
                "the relay holds {} only up to {len}, before {}",
                p.file, p.pos
            ));
        }
        Ok(dir)
    }

    /// The end of the relay's last complete transaction.
    pub fn relay_end(&self) -> Option<Position> {
        self.st().relay.clone()
    }

    /// DM's `relayStatus`.
    pub fn status(&self) -> pb::RelayStatus {
        let s = self.st().clone();
        let catch_up = match (&s.relay, &s.master) {
            (Some(r), Some(m)) => r == m,
            _ => false,
        };
        pb::RelayStatus {
            master_binlog: s.master.map(|p| p.to_string()).unwrap_or_default(),
            master_binlog_gtid: s.master_gtid,
            relay_sub_dir: s.subdir,
            relay_binlog: s.relay.map(|p| p.to_string()).unwrap_or_default(),
            relay_binlog_gtid: s.relay_gtid,
            relay_catch_up_master: catch_up,
            stage: s.stage.to_pb() as i32,
            result: s.error.map(|e| pb::ProcessResult {
                is_canceled: false,
                errors: vec![pb::ProcessError {
                    err_code: e
                        .strip_prefix("[code=")
                        .and_then(|r| r.split(']').next())
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(30015),
                    err_class: "relay-unit".into(),
                    err_scope: "internal".into(),
                    err_level: "high".into(),
                    message: e,
                    raw_cause: String::new(),
                    workaround:
                        "Please fix the upstream or the relay directory, then `resume-relay`."
                            .into(),
                }],
                detail: Vec::new(),
            }),
        }
    }

    async fn run_loop(self: Arc<Self>, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(500);
        loop {
            let r = self.write(&cancel).await;
            if cancel.is_cancelled() {
                return;
            }
            match r {
                Ok(()) => return,
                Err(f) if f.retry => {
                    tracing::warn!(error = %f.msg, "relay: retrying after {backoff:?}");
                    self.st().error = Some(f.msg);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(f) => {
                    tracing::error!(error = %f.msg, "relay paused by an error");
                    let mut s = self.st();
                    s.error = Some(f.msg);
                    s.stage = RelayStage::Paused;
                    return;
                }
            }
        }
    }

    /// The upstream's identity in DM's sub-directory form: MariaDB `<domain>-<server_id>`,
    /// MySQL `server_uuid`.
    async fn server_uuid(conn: &mut mysql_async::Conn) -> Result<String, Failure> {
        let v: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| up("read the upstream version", e))?;
        if v.unwrap_or_default().to_lowercase().contains("mariadb") {
            let r: Option<(u64, u64)> = conn
                .query_first("SELECT @@gtid_domain_id, @@server_id")
                .await
                .map_err(|e| up("read the upstream server id", e))?;
            let (d, s) = r.unwrap_or((0, 0));
            Ok(format!("{d}-{s}"))
        } else {
            let r: Option<String> = conn
                .query_first("SELECT @@server_uuid")
                .await
                .map_err(|e| up("read the upstream server uuid", e))?;
            Ok(r.unwrap_or_default())
        }
    }

    async fn master_status(conn: &mut mysql_async::Conn) -> Result<(Position, String), Failure> {
        let row: Option<mysql_async::Row> = conn
            .query_first("SHOW MASTER STATUS")
            .await
            .map_err(|e| up("SHOW MASTER STATUS", e))?;
        let row = row.ok_or_else(|| {
            fail("[code=30012] the upstream's binlog is off (SHOW MASTER STATUS is empty)")
        })?;
        let file: String = row.get(0).unwrap_or_default();
        let pos: u64 = row.get(1).unwrap_or_default();
        let gtid: Option<String> = conn
            .query_first("SELECT @@global.gtid_binlog_pos")
            .await
            .unwrap_or(None);
        Ok((Position { file, pos }, gtid.unwrap_or_default()))
    }

    /// Where a new sub-directory starts.
    async fn first_position(&self, conn: &mut mysql_async::Conn) -> Result<Position, Failure> {
        if !self.cfg.relay_binlog_name.is_empty() {
            if files::binlog_seq(&self.cfg.relay_binlog_name).is_none_or(|n| n == 0) {
                return Err(fail(format!(
                    "[code=30004] relay-binlog-name {} not valid",
                    self.cfg.relay_binlog_name
                )));
            }
            return Ok(Position {
                file: self.cfg.relay_binlog_name.clone(),
                pos: 4,
            });
        }
        if !self.cfg.relay_binlog_gtid.is_empty() {
            // MariaDB: the newest file whose starting GTID state the asked state has reached.
            let want = self.cfg.relay_binlog_gtid.replace(['\'', '\\'], "");
            let files: Vec<(String, u64)> = conn
                .query("SHOW BINARY LOGS")
                .await
                .map_err(|e| up("SHOW BINARY LOGS", e))?;
            for (f, _) in files.iter().rev() {
                let at: Option<Option<String>> = conn
                    .query_first(format!(
                        "SELECT BINLOG_GTID_POS('{}', 4)",
                        f.replace('\'', "")
                    ))
                    .await
                    .map_err(|e| up("BINLOG_GTID_POS", e))?;
                if gtid_reached(&want, &at.flatten().unwrap_or_default()) {
                    return Ok(Position {
                        file: f.clone(),
                        pos: 4,
                    });
                }
            }
            if let Some((f, _)) = files.first() {
                return Ok(Position {
                    file: f.clone(),
                    pos: 4,
                });
            }
        }
        let (m, _) = Self::master_status(conn).await?;
        Ok(Position {
            file: m.file,
            pos: 4,
        })
    }

    async fn write(&self, cancel: &CancellationToken) -> Result<(), Failure> {
        let opts = self.cfg.from.mysql_opts(Vec::new());
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(opts.clone()))
            .await
            .map_err(|_| up("connect to the upstream", "no answer in time"))?
            .map_err(|e| up("connect to the upstream", e))?;
        let uuid = Self::server_uuid(&mut conn).await?;
        let root = self.root.clone();
        let mut layout = Layout::open(&root).map_err(fail)?;
        let current_uuid = layout
            .current()
            .and_then(|c| files::parse_subdir(c).ok())
            .map(|(u, _)| u);
        let switch = self.switch_pending();
        // After a switch-relay-master: a new sub-directory from the relay's last GTID.
        let mut gtid_start: Option<String> = None;
        let migrate = self.migrate_pending();
        let dir = match (&current_uuid, switch) {
            (_, _) if migrate.is_some() => {
                // migrate-relay: a new sub-directory at the position asked for (the hole from
                // its file's start to there filled).
                let (rev, at) = migrate.expect("checked");
                let meta = Meta {
                    binlog_name: at.file.clone(),
                    binlog_pos: at.pos,
                    binlog_gtid: String::new(),
                };
                let d = layout.add_subdir(&uuid, &meta).map_err(fail)?;
                self.mark_rev_done(MIGRATE_FILE, rev)?;
                self.st().migrate_done = Some(rev);
                tracing::info!(subdir = %d.display(), at = %at, "relay: migrate-relay: new sub-directory");
                d
            }
            (Some(_), Some(rev)) => {
                let prev = match layout.current_dir() {
                    Some(d) => files::read_meta(&d).map_err(fail)?,
                    None => Meta::default(),
                };
                if prev.binlog_gtid.is_empty() {
                    return Err(fail(
                        "[code=30034] switch-relay-master: the relay holds no GTID to continue from",
                    ));
                }
                let d = layout.add_subdir(&uuid, &Meta::default()).map_err(fail)?;
                files::write_atomic(&d.join(files::START_GTID), prev.binlog_gtid.as_bytes())
                    .map_err(|e| fail(format!("[code=30006] {e}")))?;
                self.mark_rev_done(SWITCH_FILE, rev)?;
                self.st().switch_done = Some(rev);
                tracing::info!(subdir = %d.display(), gtid = %prev.binlog_gtid, "relay: switch-relay-master: new sub-directory after the relay's last GTID");
                gtid_start = Some(prev.binlog_gtid);
                d
            }
            (Some(u), None) if *u == uuid => layout.current_dir().expect("a current sub-directory"),
            (Some(u), None) => {
                return Err(fail(format!(
                    "[code=30044] the upstream is another server ({uuid}) than the relay's ({u}): if it failed over, run `pause-relay`, `switch-relay-master` and `resume-relay`"
                )));
            }
            (None, _) => {
                let start = self.first_position(&mut conn).await?;
                let meta = Meta {
                    binlog_name: start.file.clone(),
                    binlog_pos: start.pos,
                    binlog_gtid: String::new(),
                };
                let d = layout.add_subdir(&uuid, &meta).map_err(fail)?;
                if let Some(rev) = switch {
                    let _ = self.mark_rev_done(SWITCH_FILE, rev);
                    self.st().switch_done = Some(rev);
                }
                tracing::info!(subdir = %d.display(), start = %start, "relay: new sub-directory");
                d
            }
        };
        let subdir = layout.current().unwrap_or_default().to_string();
        let mut meta = files::read_meta(&dir).map_err(fail)?;
        // A crash may have left the last file past the meta (or with a partial event): cut it
        // back to its last complete transaction and go on from there.
        let last = files::binlog_files(&dir).pop();
        if let Some(last) = last {
            let path = dir.join(&last);
            let from = if last == meta.binlog_name {
                meta.binlog_pos
            } else {
                4
            };
            let len = files::recover(&path, from).map_err(fail)?;
            if len == 0 {
                let _ = std::fs::remove_file(&path);
            } else {
                meta.binlog_name = last;
                meta.binlog_pos = len;
            }
        }
        {
            let mut s = self.st();
            s.subdir = subdir.clone();
            if meta.binlog_pos > 4 {
                s.relay = Some(meta.position());
            }
            s.relay_gtid = meta.binlog_gtid.clone();
        }
        let server_id = if self.cfg.server_id != 0 {
            self.cfg.server_id.wrapping_add(1_000_000)
        } else {
            300_000_000
                + (crc32fast::hash(format!("relay/{}", self.source_id).as_bytes()) % 100_000_000)
        };
        // A new sub-directory of a switch starts after the GTID (its first file then has a
        // hole up to the GTID's offset, filled); any other start is a position.
        let at = match (&gtid_start, meta.binlog_name.is_empty()) {
            (Some(g), true) => StartAt::Gtid(g.clone()),
            _ => StartAt::Position(meta.position()),
        };
        let start = meta.position();
        tracing::info!(from = %start, gtid = ?gtid_start, subdir = %subdir, "relay: reading the upstream binlog");
        let mut stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            crate::binlog::open_stream(opts, server_id, &at, Some(HEARTBEAT), false),
        )
        .await
        .map_err(|_| up("open the upstream binlog stream", "no answer in time"))?
        .map_err(|e| up(&format!("[code=30012] start sync from position {start}"), e))?;

        let mut w = Writer::new(dir.clone(), meta);
        let mut last_flush = Instant::now();
        let mut last_master = Instant::now() - MASTER_EVERY;
        loop {
            if last_master.elapsed() >= MASTER_EVERY {
                last_master = Instant::now();
                if let Ok((m, g)) = Self::master_status(&mut conn).await {
                    let mut s = self.st();
                    s.master = Some(m);
                    s.master_gtid = g;
                }
            }
            let next = tokio::select! {
                _ = cancel.cancelled() => {
                    w.flush_meta().map_err(fail)?;
                    return Ok(());
                }
                n = tokio::time::timeout(Duration::from_millis(500), stream.next()) => n,
            };
            match next {
                Err(_) => {
                    if w.last_event.elapsed() > READ_DEADLINE {
                        return Err(up(
                            "read the upstream binlog",
                            format!("no event and no heartbeat for {READ_DEADLINE:?}"),
                        ));
                    }
                }
                Ok(None) => {
                    return Err(up(
                        "read the upstream binlog",
                        "the upstream closed the stream",
                    ));
                }
                Ok(Some(Err(e))) => return Err(up("read the upstream binlog", e)),
                Ok(Some(Ok(ev))) => {
                    w.last_event = Instant::now();
                    let mut bytes = Vec::with_capacity(ev.header().event_size() as usize);
                    ev.write(BinlogVersion::Version4, &mut bytes)
                        .map_err(|e| fail(format!("[code=30025] serialise a binlog event: {e}")))?;
                    if w.event(&bytes, &ev).map_err(fail)? {
                        let mut s = self.st();
                        s.relay = Some(w.meta.position());
                        s.relay_gtid = w.meta.binlog_gtid.clone();
                        s.error = None;
                    }
                }
            }
            if last_flush.elapsed() >= FLUSH_EVERY {
                last_flush = Instant::now();
                w.flush_meta().map_err(fail)?;
            }
        }
    }

    /// `purge-relay --filename F [--sub-dir D]`: removes the relay files before `F` in `D`
    /// (default: the current sub-directory) and every older sub-directory, unless a task
    /// still needs them: `needed` is the earliest position the source's tasks read from (in
    /// the current sub-directory), and a purge that would remove it is refused (DM's 30037).
    pub async fn purge(
        &self,
        filename: &str,
        subdir: &str,
        needed: Option<(&str, Position)>,
    ) -> Result<Vec<String>, String> {
        let _g = self
            .purging
            .try_lock()
            .map_err(|_| "[code=30036] filename is purging".to_string())?;
        let mut layout = Layout::open(&self.root)?;
        let current = layout.current().unwrap_or_default().to_string();
        let sub = if subdir.is_empty() {
            current.clone()
        } else {
            subdir.to_string()
        };
        if !layout.subdirs.iter().any(|s| s == &sub) {
            return Err(format!(
                "[code=30042] sub-dir {sub} not found in the relay index"
            ));
        }
        let seq = files::binlog_seq;
        if seq(filename).is_none() {
            return Err(format!(
                "[code=30042] filename {filename} is not a binlog file name"
            ));
        }
        if let Some((task, p)) = &needed
            && sub == current
            && seq(&p.file) < seq(filename)
        {
            return Err(format!(
                "[code=30037] relay log purge is forbidden temporarily, because sub task {task} still needs {} (it reads from {p})",
                p.file
            ));
        }
        let mut removed = Vec::new();
        for s in layout.subdirs.clone() {
            let dir = self.root.join(&s);
            if s == sub {
                for f in files::purgeable(&dir, filename) {
                    std::fs::remove_file(dir.join(&f))
                        .map_err(|e| format!("[code=30041] remove relay log {f} {e}"))?;
                    removed.push(format!("{s}/{f}"));
                }
                break;
            }
            if s == current {
                break;
            }
            // An older sub-directory goes whole.
            std::fs::remove_dir_all(&dir)
                .map_err(|e| format!("[code=30041] remove relay log {s} {e}"))?;
            removed.push(s);
        }
        layout.trim()?;
        tracing::info!(removed = ?removed, "relay log purged");
        Ok(removed)
    }
}

/// Free bytes on the file system holding `path` (None when it cannot be read).
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-pointer for the call.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (r == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

impl Relay {
    /// The background purge (DM's `purge.interval` / `expires` / `remain-space`): files of the
    /// current sub-directory older than `needed` (the earliest file a task reads) and than the
    /// file being written go when the disk has less than `remain-space` GB free, or when they
    /// were last written more than `expires` hours ago. Returns the files removed.
    pub fn auto_purge(&self, needed: Option<&Position>) -> Vec<String> {
        let p = &self.cfg.purge;
        if p.interval <= 0 || (p.expires <= 0 && p.remain_space <= 0) {
            return Vec::new();
        }
        let Ok(_g) = self.purging.try_lock() else {
            return Vec::new();
        };
        let Some(dir) = self.current_dir() else {
            return Vec::new();
        };
        let seq = files::binlog_seq;
        let files = files::binlog_files(&dir);
        let Some(active) = files.last().and_then(|f| seq(f)) else {
            return Vec::new();
        };
        let limit = needed
            .and_then(|n| seq(&n.file))
            .unwrap_or(active)
            .min(active);
        let low_space = p.remain_space > 0
            && free_bytes(&self.root)
                .is_some_and(|free| free < (p.remain_space as u64).saturating_mul(1 << 30));
        let cutoff = (p.expires > 0).then(|| {
            std::time::SystemTime::now()
                - Duration::from_secs((p.expires as u64).saturating_mul(3600))
        });
        let mut removed = Vec::new();
        for f in files {
            if seq(&f).is_none_or(|s| s >= limit) {
                continue;
            }
            let path = dir.join(&f);
            let expired = cutoff.is_some_and(|c| {
                std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m < c)
            });
            if (low_space || expired) && std::fs::remove_file(&path).is_ok() {
                removed.push(f);
            }
        }
        if !removed.is_empty() {
            tracing::info!(removed = ?removed, low_space, "relay log purged in the background");
        }
        removed
    }
}

/// Appends events to the current file.
struct Writer {
    dir: PathBuf,
    meta: Meta,
    /// The file being written and its length.
    file: Option<(String, File, u64)>,
    /// The name the next FormatDescription starts.
    next_name: Option<String>,
    /// The file the stream was asked for (its first fake ROTATE's name is fixed with it).
    requested: String,
    /// The current file's events carry a CRC32 checksum (its FormatDescription says so).
    checksum: bool,
    /// Bytes of the current transaction, written when it ends.
    pending: Vec<u8>,
    edge: TxnEdge,
    /// MariaDB: the GTID of the transaction being written.
    cur_gtid: Option<(u32, String)>,
    gtids: std::collections::BTreeMap<u32, String>,
    dirty: bool,
    last_event: Instant,
}

impl Writer {
    fn new(dir: PathBuf, meta: Meta) -> Writer {
        let mut gtids = std::collections::BTreeMap::new();
        for g in meta.binlog_gtid.split(',').filter(|g| !g.is_empty()) {
            if let Some(d) = g.split('-').next().and_then(|d| d.parse::<u32>().ok()) {
                gtids.insert(d, g.to_string());
            }
        }
        let next_name = Some(meta.binlog_name.clone());
        Writer {
            dir,
            requested: meta.binlog_name.clone(),
            checksum: true,
            meta,
            file: None,
            next_name,
            pending: Vec::new(),
            edge: TxnEdge::default(),
            cur_gtid: None,
            gtids,
            dirty: false,
            last_event: Instant::now(),
        }
    }

    fn open(&mut self, name: &str) -> Result<(), String> {
        if self.file.as_ref().is_some_and(|(n, _, _)| n == name) {
            return Ok(());
        }
        let path = self.dir.join(name);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("[code=30025] open {}: {e}", path.display()))?;
        let len = f.metadata().map_err(|e| format!("[code=30023] {e}"))?.len();
        self.file = Some((name.to_string(), f, len));
        Ok(())
    }

    /// One event from the upstream; true when a transaction ended (the relay position moved).
    fn event(
        &mut self,
        bytes: &[u8],
        ev: &mysql_async::binlog::events::Event,
    ) -> Result<bool, String> {
        let h = files::Header::parse(bytes).ok_or("a binlog event shorter than its header")?;
        if h.type_code == types::HEARTBEAT {
            return Ok(false);
        }
        if h.type_code == types::ROTATE && (h.timestamp == 0 || h.log_pos == 0) {
            // A fake ROTATE: the file the next events belong to.
            let next = rotate_name(ev, &self.requested)?;
            self.next_name = Some(next);
            return Ok(false);
        }
        if h.type_code == types::FORMAT_DESCRIPTION {
            self.checksum = matches!(
                ev.footer().get_checksum_alg(),
                Ok(Some(
                    mysql_common::binlog::consts::BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32
                ))
            );
            let name = self.next_name.clone().ok_or(
                "[code=30021] a FormatDescription with no file name (no ROTATE before it)",
            )?;
            self.open(&name)?;
            let (_, f, len) = self.file.as_mut().expect("opened");
            if *len == 0 {
                f.write_all(&files::MAGIC)
                    .and_then(|_| f.write_all(bytes))
                    .map_err(|e| format!("[code=30025] write {name}: {e}"))?;
                *len = 4 + bytes.len() as u64;
            }
            if self.meta.binlog_name != name || self.meta.binlog_pos < *len {
                self.meta.binlog_name = name;
                self.meta.binlog_pos = *len;
                self.dirty = true;
            }
            return Ok(false);
        }
        // Artificial events (and any without a position: the fake GTID_LIST of a GTID start)
        // are not in the upstream's file.
        if h.flags & ARTIFICIAL != 0 || h.log_pos == 0 {
            return Ok(false);
        }
        let (name, f, len) = self
            .file
            .as_mut()
            .ok_or("[code=30019] no underlying writer opened (an event before the file's FormatDescription)")?;
        let size = u64::from(h.size);
        let start = u64::from(h.log_pos).saturating_sub(size);
        let written = *len + self.pending.len() as u64;
        if start < written {
            // Already in the file (the upstream resent it): it must be the same bytes.
            let same = start + size <= *len && {
                use std::io::{Read, Seek, SeekFrom};
                let mut old = vec![0u8; size as usize];
                File::open(self.dir.join(&*name))
                    .and_then(|mut r| {
                        r.seek(SeekFrom::Start(start))?;
                        r.read_exact(&mut old)
                    })
                    .is_ok()
                    && old == bytes
            };
            if same {
                return Ok(false);
            }
            return Err(format!(
                "[code=30029] an event at {name}:{start} differs from the one the relay holds there"
            ));
        }
        if start > written {
            // MariaDB does not send a replica the ANNOTATE_ROWS events it did not ask for
            // (mysql_async cannot ask): their bytes are a hole before the next event. Filled
            // with one ANNOTATE_ROWS of the same size (DM fills holes with a dummy event too),
            // so every later event stays at the upstream's offset and readers skip it.
            let dummy = hole_event(start - written, &h, self.checksum).ok_or_else(|| {
                format!(
                    "[code=30024] a hole of {} bytes in relay file {name} at {written} is too small to fill",
                    start - written
                )
            })?;
            self.pending.extend_from_slice(&dummy);
        }
        self.pending.extend_from_slice(bytes);
        if h.type_code == types::MARIADB_GTID {
            let d = ev.data();
            if d.len() >= 12 {
                let seq = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
                let domain = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
                self.cur_gtid = Some((domain, format!("{domain}-{}-{seq}", h_server(bytes))));
            }
        }
        let boundary = self.edge.after(ev);
        let rotate_next = if h.type_code == types::ROTATE {
            Some(rotate_name(ev, "")?)
        } else {
            None
        };
        if boundary || rotate_next.is_some() {
            f.write_all(&self.pending)
                .map_err(|e| format!("[code=30025] write {name}: {e}"))?;
            *len += self.pending.len() as u64;
            self.pending.clear();
            if let Some((d, g)) = self.cur_gtid.take() {
                self.gtids.insert(d, g);
                self.meta.binlog_gtid = self.gtids.values().cloned().collect::<Vec<_>>().join(",");
            }
            self.meta.binlog_name = name.clone();
            self.meta.binlog_pos = *len;
            self.dirty = true;
            if let Some(next) = rotate_next {
                // The next file starts with its FormatDescription.
                self.next_name = Some(next);
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// fsync what was written, then save the meta there.
    fn flush_meta(&mut self) -> Result<(), String> {
        if !self.dirty {
            return Ok(());
        }
        if let Some((name, f, _)) = &self.file {
            f.sync_data()
                .map_err(|e| format!("[code=30025] fsync {name}: {e}"))?;
        }
        files::write_meta(&self.dir, &self.meta)?;
        self.dirty = false;
        Ok(())
    }
}

/// Whether the MariaDB GTID state `want` (`d-s-n,…`) has reached `at`: every domain of `at`
/// is in `want` with a sequence number at least as high.
pub fn gtid_reached(want: &str, at: &str) -> bool {
    let parse = |s: &str| -> std::collections::BTreeMap<u64, u64> {
        s.split(',')
            .filter_map(|g| {
                let mut it = g.trim().split('-');
                let d = it.next()?.parse().ok()?;
                let _server = it.next()?;
                let n = it.next()?.parse().ok()?;
                Some((d, n))
            })
            .collect()
    };
    let (w, a) = (parse(want), parse(at));
    a.iter().all(|(d, n)| w.get(d).is_some_and(|m| m >= n))
}

fn h_server(bytes: &[u8]) -> u32 {
    bytes
        .get(5..9)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

/// An ANNOTATE_ROWS event of exactly `size` bytes ending where `next` starts (a hole's
/// filler), with a CRC32 when the file's events carry one; None below the smallest event.
pub fn hole_event(size: u64, next: &files::Header, checksum: bool) -> Option<Vec<u8>> {
    let tail = if checksum { 4 } else { 0 };
    let size32 = u32::try_from(size).ok()?;
    if (size as usize) < files::HEADER_LEN + tail {
        return None;
    }
    let text_len = size as usize - files::HEADER_LEN - tail;
    let mut b = Vec::with_capacity(size as usize);
    b.extend_from_slice(&next.timestamp.to_le_bytes());
    b.push(files::types::ANNOTATE_ROWS);
    b.extend_from_slice(&next.server_id.to_le_bytes());
    b.extend_from_slice(&size32.to_le_bytes());
    b.extend_from_slice(&next.log_pos.wrapping_sub(next.size).to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    let note = b"/* dm-rs relay: an event the upstream did not send */";
    let mut text = note[..note.len().min(text_len)].to_vec();
    text.resize(text_len, b' ');
    b.extend_from_slice(&text);
    if checksum {
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
    }
    Some(b)
}

/// A ROTATE's next file (the first fake one's name fixed with the file asked for: MariaDB
/// glues its checksum to it).
fn rotate_name(ev: &mysql_async::binlog::events::Event, requested: &str) -> Result<String, String> {
    match ev.read_data() {
        Ok(Some(mysql_async::binlog::events::EventData::RotateEvent(r))) => {
            Ok(crate::binlog::fix_rotate_name(r.name_raw(), requested))
        }
        _ => Err("[code=30020] a ROTATE event that does not parse".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hole_is_filled_with_an_annotate_rows_of_its_size() {
        let next = files::Header {
            timestamp: 9,
            type_code: files::types::XID,
            server_id: 71,
            size: 31,
            log_pos: 1455,
            flags: 0,
        };
        for (size, checksum) in [(416u64, true), (23, true), (19, false), (400, false)] {
            let b = hole_event(size, &next, checksum).expect("fits");
            assert_eq!(b.len() as u64, size);
            let h = files::Header::parse(&b).unwrap();
            assert_eq!(h.type_code, files::types::ANNOTATE_ROWS);
            assert_eq!(h.size as u64, size);
            assert_eq!(h.log_pos, 1424, "ends where the next event starts");
            assert_eq!(h.server_id, 71);
            if checksum {
                let n = b.len();
                assert_eq!(crc32fast::hash(&b[..n - 4]).to_le_bytes(), b[n - 4..]);
            }
        }
        assert!(hole_event(22, &next, true).is_none());
        assert!(hole_event(18, &next, false).is_none());
    }

    #[test]
    fn a_gtid_state_reaches_a_file_start_per_domain() {
        let cases = [
            ("0-1-10", "", true),
            ("0-1-10", "0-1-10", true),
            ("0-1-10", "0-1-11", false),
            ("0-1-10,1-2-5", "0-1-3,1-2-5", true),
            ("0-1-10", "0-1-3,1-2-5", false),
            ("", "0-1-1", false),
        ];
        for (want, at, reached) in cases {
            assert_eq!(gtid_reached(want, at), reached, "{want} vs {at}");
        }
    }
}
