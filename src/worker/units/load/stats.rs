//! The Load unit's live figures (DM's `LoadStatus`): bytes committed (the sum of the
//! checkpoint's offsets), bytes known (the sum of the data files' sizes seen so far), the
//! progress text, the dump's binlog position, and the recent speed. Kept by the subtask across
//! runs, so a paused task shows its last figures.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::pb;
use crate::worker::units::full::BinlogLoc;
use crate::worker::units::{BoxFuture, UnitStatus};

/// The window over which `bps` is measured.
const BPS_WINDOW: Duration = Duration::from_secs(5);

/// DM's LoadStatus, kept up to date by the running unit.
#[derive(Default)]
pub struct LoadStats {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    finished: i64,
    total: i64,
    files_total: u64,
    files_done: u64,
    done: bool,
    meta: Option<BinlogLoc>,
    window: Option<(Instant, i64)>,
    bps: i64,
}

/// DM's progress text: `"%.2f %%"` of finished / total; a total of 0 is `"100.00 %"` when the
/// load finished and `"0.00 %"` before.
pub fn progress(finished: i64, total: i64, done: bool) -> String {
    if total <= 0 {
        return if done { "100.00 %" } else { "0.00 %" }.to_string();
    }
    format!("{:.2} %", finished as f64 * 100.0 / total as f64)
}

impl LoadStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new run starts: figures from its checkpoint.
    pub(crate) fn reset(&self, finished: i64, total: i64, files_total: u64, files_done: u64) {
        let mut s = self.lock();
        s.finished = finished;
        s.total = total;
        s.files_total = files_total;
        s.files_done = files_done;
        s.done = false;
        s.window = None;
        s.bps = 0;
    }

    /// A data file became known (`size` bytes), `done` bytes of it already loaded.
    pub(crate) fn add_file(&self, size: u64, done: u64, finished: bool) {
        let mut s = self.lock();
        s.total += size as i64;
        s.finished += done as i64;
        s.files_total += 1;
        if finished {
            s.files_done += 1;
        }
    }

    /// `n` more bytes were committed.
    pub(crate) fn add_finished(&self, n: u64) {
        let mut s = self.lock();
        s.finished += n as i64;
        let now = Instant::now();
        let finished = s.finished;
        let (t0, b0) = *s.window.get_or_insert((now, finished - n as i64));
        let el = now.duration_since(t0);
        if el >= BPS_WINDOW {
            s.bps = ((finished - b0) as f64 / el.as_secs_f64()) as i64;
            s.window = Some((now, finished));
        }
    }

    pub(crate) fn file_done(&self) {
        self.lock().files_done += 1;
    }

    pub(crate) fn set_meta(&self, m: Option<BinlogLoc>) {
        self.lock().meta = m;
    }

    /// The dump's binlog location, once known.
    pub(crate) fn meta(&self) -> Option<BinlogLoc> {
        self.lock().meta.clone()
    }

    pub(crate) fn set_done(&self) {
        let mut s = self.lock();
        s.done = true;
        s.bps = 0;
    }

    /// (finished bytes, total bytes, files done, files known).
    pub fn figures(&self) -> (i64, i64, u64, u64) {
        let s = self.lock();
        (s.finished, s.total, s.files_done, s.files_total)
    }

    pub fn to_load_pb(&self) -> pb::LoadStatus {
        let s = self.lock();
        pb::LoadStatus {
            finished_bytes: s.finished,
            total_bytes: s.total,
            progress: progress(s.finished, s.total, s.done),
            meta_binlog: s
                .meta
                .as_ref()
                .map(|m| format!("({}, {})", m.file, m.pos))
                .unwrap_or_default(),
            meta_binlog_gtid: s.meta.as_ref().map(|m| m.gtid.clone()).unwrap_or_default(),
            bps: s.bps,
        }
    }
}

impl UnitStatus for LoadStats {
    fn to_pb(&self) -> pb::sub_task_status::Status {
        pb::sub_task_status::Status::Load(self.to_load_pb())
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
    fn progress_formats_like_dm() {
        let cases = [
            (0, 0, false, "0.00 %"),
            (0, 0, true, "100.00 %"),
            (0, 100, false, "0.00 %"),
            (2544, 10000, false, "25.44 %"),
            (1, 3, false, "33.33 %"),
            (2, 3, false, "66.67 %"),
            (10, 10, true, "100.00 %"),
            (10, 10, false, "100.00 %"),
        ];
        for (f, t, done, want) in cases {
            assert_eq!(progress(f, t, done), want, "{f}/{t} {done}");
        }
    }

    #[test]
    fn status_shows_dm_shapes() {
        let s = LoadStats::default();
        s.reset(10, 40, 2, 0);
        s.add_file(60, 0, false);
        s.add_finished(40);
        s.set_meta(Some(BinlogLoc {
            file: "mysql-bin.000003".into(),
            pos: 1274,
            gtid: "0-1-5".into(),
        }));
        let pb = s.to_load_pb();
        assert_eq!(pb.finished_bytes, 50);
        assert_eq!(pb.total_bytes, 100);
        assert_eq!(pb.progress, "50.00 %");
        assert_eq!(pb.meta_binlog, "(mysql-bin.000003, 1274)");
        assert_eq!(pb.meta_binlog_gtid, "0-1-5");
    }
}
