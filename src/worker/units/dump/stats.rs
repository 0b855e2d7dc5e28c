//! The Dump unit's live figures: query-status' `dump` object (DM v6.4+'s `DumpStatus`:
//! totalTables, completedTables, finishedBytes, finishedRows, estimateTotalRows, bps,
//! progress).
//!
//! Shared by every run of a subtask ([`crate::worker::units::Shared::dump_stats`]); a run
//! resets it from the dump's state file in `init` (finished chunks of earlier sessions count),
//! then the dump workers add to it after each written piece. `progress` is finished chunks /
//! planned chunks as dumpling prints it (`"%5.2f %%"`, `"100 %"` when there are no chunks);
//! `bps` is the write speed since the previous status read (at least a second apart).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::pb;
use crate::worker::units::{BoxFuture, UnitStatus};

/// The Dump unit's live figures (query-status' `dump` object).
pub struct DumpStats {
    total_tables: AtomicU64,
    completed_tables: AtomicU64,
    finished_bytes: AtomicU64,
    finished_rows: AtomicU64,
    estimate_rows: AtomicU64,
    total_chunks: AtomicU64,
    finished_chunks: AtomicU64,
    /// The tables are planned (chunk counts known).
    planned: AtomicBool,
    /// (time, bytes) of the previous speed sample, and the speed then.
    speed: Mutex<(Instant, u64, i64)>,
}

impl Default for DumpStats {
    fn default() -> Self {
        DumpStats {
            total_tables: AtomicU64::new(0),
            completed_tables: AtomicU64::new(0),
            finished_bytes: AtomicU64::new(0),
            finished_rows: AtomicU64::new(0),
            estimate_rows: AtomicU64::new(0),
            total_chunks: AtomicU64::new(0),
            finished_chunks: AtomicU64::new(0),
            planned: AtomicBool::new(false),
            speed: Mutex::new((Instant::now(), 0, 0)),
        }
    }
}

/// The figures a run starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub tables: u64,
    pub completed_tables: u64,
    pub bytes: u64,
    pub rows: u64,
    pub estimate_rows: u64,
    pub chunks: u64,
    pub finished_chunks: u64,
}

/// dumpling's progress text.
pub fn progress_text(finished: u64, total: u64) -> String {
    if total == 0 || finished > total {
        "100 %".into()
    } else {
        format!("{:5.2} %", finished as f64 * 100.0 / total as f64)
    }
}

impl DumpStats {
    /// Sets every figure (a run's start, from the state file; `planned` once chunk counts are
    /// known).
    pub fn reset(&self, t: Totals, planned: bool) {
        self.total_tables.store(t.tables, Ordering::Relaxed);
        self.completed_tables
            .store(t.completed_tables, Ordering::Relaxed);
        self.finished_bytes.store(t.bytes, Ordering::Relaxed);
        self.finished_rows.store(t.rows, Ordering::Relaxed);
        self.estimate_rows.store(t.estimate_rows, Ordering::Relaxed);
        self.total_chunks.store(t.chunks, Ordering::Relaxed);
        self.finished_chunks
            .store(t.finished_chunks, Ordering::Relaxed);
        self.planned.store(planned, Ordering::Relaxed);
        if let Ok(mut s) = self.speed.lock() {
            *s = (Instant::now(), t.bytes, 0);
        }
    }

    /// Rows and bytes rendered by a dump worker.
    pub fn add_written(&self, rows: u64, bytes: u64) {
        self.finished_rows.fetch_add(rows, Ordering::Relaxed);
        self.finished_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Takes back what a cancelled or failed chunk had added.
    pub fn sub_written(&self, rows: u64, bytes: u64) {
        let _ = self
            .finished_rows
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(rows))
            });
        let _ = self
            .finished_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(bytes))
            });
    }

    pub fn chunk_done(&self) {
        self.finished_chunks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn table_done(&self) {
        self.completed_tables.fetch_add(1, Ordering::Relaxed);
    }

    /// Current (finished chunks, planned chunks).
    pub fn chunks(&self) -> (u64, u64) {
        (
            self.finished_chunks.load(Ordering::Relaxed),
            self.total_chunks.load(Ordering::Relaxed),
        )
    }

    /// Current (rows, bytes).
    pub fn written(&self) -> (u64, u64) {
        (
            self.finished_rows.load(Ordering::Relaxed),
            self.finished_bytes.load(Ordering::Relaxed),
        )
    }

    fn bps(&self) -> i64 {
        let bytes = self.finished_bytes.load(Ordering::Relaxed);
        let Ok(mut s) = self.speed.lock() else {
            return 0;
        };
        let elapsed = s.0.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            let rate = bytes.saturating_sub(s.1) as f64 / elapsed;
            *s = (Instant::now(), bytes, rate as i64);
        }
        s.2
    }

    /// The wire form.
    pub fn to_dump_status(&self) -> pb::DumpStatus {
        let (finished, total) = self.chunks();
        let progress = if self.planned.load(Ordering::Relaxed) {
            progress_text(finished, total)
        } else {
            progress_text(0, 1)
        };
        pb::DumpStatus {
            total_tables: self.total_tables.load(Ordering::Relaxed) as i64,
            completed_tables: self.completed_tables.load(Ordering::Relaxed) as f64,
            finished_bytes: self.finished_bytes.load(Ordering::Relaxed) as f64,
            finished_rows: self.finished_rows.load(Ordering::Relaxed) as f64,
            estimate_total_rows: self.estimate_rows.load(Ordering::Relaxed) as f64,
            bps: self.bps(),
            progress,
        }
    }
}

impl UnitStatus for DumpStats {
    fn to_pb(&self) -> pb::sub_task_status::Status {
        pb::sub_task_status::Status::Dump(self.to_dump_status())
    }
    fn ready(&self) -> bool {
        true
    }
    fn wait_ready(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_as_dumpling_prints_it() {
        let cases = [
            (0, 0, "100 %"),
            (0, 4, " 0.00 %"),
            (1, 3, "33.33 %"),
            (4, 4, "100.00 %"),
            (5, 4, "100 %"),
        ];
        for (f, t, want) in cases {
            assert_eq!(progress_text(f, t), want, "{f}/{t}");
        }
    }

    #[test]
    fn figures_follow_the_run() {
        let s = DumpStats::default();
        assert_eq!(s.to_dump_status().progress, " 0.00 %", "not planned yet");
        s.reset(
            Totals {
                tables: 3,
                completed_tables: 1,
                bytes: 100,
                rows: 10,
                estimate_rows: 30,
                chunks: 4,
                finished_chunks: 1,
            },
            true,
        );
        s.add_written(5, 50);
        s.chunk_done();
        s.table_done();
        let p = s.to_dump_status();
        assert_eq!(
            (
                p.total_tables,
                p.completed_tables,
                p.finished_bytes,
                p.finished_rows
            ),
            (3, 2.0, 150.0, 15.0)
        );
        assert_eq!(p.estimate_total_rows, 30.0);
        assert_eq!(p.progress, "50.00 %");
        s.sub_written(100, 1000);
        assert_eq!(s.written(), (0, 0));
    }
}
