//! The Sync unit's live figures (DM's SyncStatus): events, TPS, the upstream's and the
//! syncer's positions. Kept by the subtask across runs (a paused task shows its last
//! figures); the running unit writes, query-status reads. [`SyncStats::ready`] turns true
//! once a run knows its start position and the upstream's, so query-status never shows an
//! empty position while the unit is Sync.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::binlog::Position;
use crate::pb;
use crate::worker::units::{BoxFuture, UnitStatus};

/// DM's SyncStatus, kept up to date by the running unit.
#[derive(Default)]
pub struct SyncStats {
    inner: Mutex<StatsInner>,
    ready: tokio::sync::Notify,
}

#[derive(Default)]
struct StatsInner {
    total_events: i64,
    started: Option<Instant>,
    window_start: Option<Instant>,
    window_events: i64,
    recent_tps: i64,
    master: Option<Position>,
    master_gtid: String,
    syncer: Option<Position>,
    syncer_gtid: String,
    last_event_ts: u32,
    /// Reading the relay log (`local`) or the upstream (`remote`).
    local: bool,
}

impl SyncStats {
    /// Whether the unit reads the relay log.
    pub fn is_local(&self) -> bool {
        self.lock().local
    }

    /// The unit now reads the relay log (`local`) or the upstream.
    pub fn set_local(&self, local: bool) {
        self.lock().local = local;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add_events(&self, n: i64) {
        let mut s = self.lock();
        let now = Instant::now();
        s.started.get_or_insert(now);
        s.total_events += n;
        let ws = *s.window_start.get_or_insert(now);
        s.window_events += n;
        let el = now.duration_since(ws);
        if el >= Duration::from_secs(10) {
            s.recent_tps = (s.window_events as f64 / el.as_secs_f64()) as i64;
            s.window_start = Some(now);
            s.window_events = 0;
        }
    }

    /// The upstream's position; it only moves forward (a poll answered before the syncer's
    /// last save must not put the upstream behind the syncer).
    pub(crate) fn set_master(&self, p: Position, gtid: String) {
        let mut s = self.lock();
        if s.master.as_ref().is_none_or(|m| *m <= p) {
            s.master = Some(p);
            s.master_gtid = gtid;
        }
    }

    pub(crate) fn set_syncer(&self, p: Position, gtid: String, ts: u32) {
        let mut s = self.lock();
        // The upstream is at least where the syncer is: a master position polled before the
        // last writes must not make a caught-up task look behind.
        if s.master.as_ref().is_none_or(|m| *m < p) {
            s.master = Some(p.clone());
            s.master_gtid = gtid.clone();
        }
        s.syncer = Some(p);
        s.syncer_gtid = gtid;
        if ts != 0 {
            s.last_event_ts = ts;
        }
    }

    /// The syncer position (applied and checkpointed).
    pub fn syncer(&self) -> Option<Position> {
        self.lock().syncer.clone()
    }

    /// The upstream position last read.
    pub fn master(&self) -> Option<Position> {
        self.lock().master.clone()
    }

    /// Both positions are known.
    pub fn has_positions(&self) -> bool {
        let s = self.lock();
        s.master.is_some() && s.syncer.is_some()
    }

    /// Wakes query-status waiters once both positions are known.
    pub(crate) fn notify_ready(&self) {
        if self.has_positions() {
            self.ready.notify_waiters();
        }
    }

    pub fn to_sync_pb(&self) -> pb::SyncStatus {
        let s = self.lock();
        let total_tps = match s.started {
            Some(t) if t.elapsed().as_secs_f64() > 0.0 => {
                (s.total_events as f64 / t.elapsed().as_secs_f64()) as i64
            }
            _ => 0,
        };
        let synced = s.master.is_some() && s.master == s.syncer;
        let behind = if synced || s.last_event_ts == 0 {
            0
        } else {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            (now - s.last_event_ts as i64).max(0)
        };
        pb::SyncStatus {
            total_events: s.total_events,
            total_tps,
            recent_tps: s.recent_tps,
            master_binlog: s.master.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            master_binlog_gtid: s.master_gtid.clone(),
            syncer_binlog: s.syncer.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            syncer_binlog_gtid: s.syncer_gtid.clone(),
            blocking_dd_ls: Vec::new(),
            unresolved_groups: Vec::new(),
            synced,
            binlog_type: if s.local { "local" } else { "remote" }.into(),
            seconds_behind_master: behind,
        }
    }
}

impl UnitStatus for SyncStats {
    fn to_pb(&self) -> pb::sub_task_status::Status {
        pb::sub_task_status::Status::Sync(self.to_sync_pb())
    }

    fn ready(&self) -> bool {
        self.has_positions()
    }

    fn wait_ready(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let n = self.ready.notified();
                if self.has_positions() {
                    return;
                }
                n.await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pos: u64) -> Position {
        Position {
            file: "bin.000001".into(),
            pos,
        }
    }

    /// (name, master polls ('m') and syncer saves ('s') in order, synced, master shown).
    type Case = (&'static str, &'static [(char, u64)], bool, u64);

    #[test]
    fn positions_never_look_behind_a_caught_up_syncer() {
        let cases: [Case; 4] = [
            (
                "poll, then the syncer catches up",
                &[('m', 100), ('s', 100)],
                true,
                100,
            ),
            (
                "a stale poll, then the syncer passes it",
                &[('m', 100), ('s', 300)],
                true,
                300,
            ),
            (
                "a poll answered late does not lower the master",
                &[('m', 300), ('s', 300), ('m', 200)],
                true,
                300,
            ),
            (
                "the upstream ahead of the syncer",
                &[('s', 100), ('m', 400)],
                false,
                400,
            ),
        ];
        for (name, steps, synced, master) in cases {
            let st = SyncStats::default();
            for (k, pos) in steps {
                match k {
                    'm' => st.set_master(p(*pos), String::new()),
                    _ => st.set_syncer(p(*pos), String::new(), 0),
                }
            }
            let pb = st.to_sync_pb();
            assert_eq!(pb.synced, synced, "{name}");
            assert_eq!(
                pb.master_binlog,
                format!("(bin.000001, {master})"),
                "{name}"
            );
        }
    }
}
