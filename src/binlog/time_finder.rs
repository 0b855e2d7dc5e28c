//! Finding a binlog position by time (DM's `start-task --start-time`): the first event group
//! whose first event was written at or after a Unix time, read from the event headers of the
//! upstream's binary logs over the replication protocol.
//!
//! [`find_by_time`] asks `SHOW BINARY LOGS`, finds the file by its first event's timestamp (a
//! binary search: the FORMAT_DESCRIPTION event's time is when the file was started), then reads
//! that file from its start until an event group begins at or after the time. An event group
//! begins at a MariaDB GTID event (MySQL: GTID / ANONYMOUS_GTID); on a server that writes none
//! of those, at a `BEGIN` query or a DDL outside a transaction (DM's rule). The answer is the
//! offset of that group's first event, so a stream started there reads whole groups.
//!
//! Only reads (a non-blocking binlog dump as a throwaway replica id, which never collides with
//! a worker's); never panics on any input. Called by dm-master before start-task / check-task.

use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, Conn, Opts};

use super::{Position, StartAt, compress, event_type, next_event, open_stream};

/// Where a time falls in the upstream's binary logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The first event group at or after the time starts here.
    At(Position),
    /// The time is before the oldest binary log's first event (older files were purged or
    /// never written): the start of the oldest file, as DM does.
    BeforeFirst(Position),
    /// No event at or after the time exists yet (DM's 20057).
    TooLate,
}

/// Why the position could not be found.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    #[error("{what}: {source}")]
    Sql {
        what: &'static str,
        #[source]
        source: mysql_async::Error,
    },
    #[error("the upstream has no binary logs (SHOW BINARY LOGS is empty): is log_bin on?")]
    NoBinlog,
    #[error("{0}")]
    Decode(String),
}

/// MySQL/MariaDB event types this module tells apart.
const QUERY: u8 = 2;
const ROTATE: u8 = 4;
const XID: u8 = 16;
const FORMAT_DESCRIPTION: u8 = 15;
const MYSQL_GTID: u8 = 33;
const MYSQL_ANONYMOUS_GTID: u8 = 34;

/// How the upstream places `datetime` (`YYYY-MM-DD HH:MM:SS`) in its own time zone (its
/// session's, which is the server's `time_zone` unless the connection sets one): the Unix time
/// when the server can compute it (`None` for a time its UNIX_TIMESTAMP cannot hold, e.g. past
/// 2038 on older servers), and the zone's offset from UTC now, in seconds.
pub async fn upstream_time(opts: Opts, datetime: &str) -> Result<(Option<i64>, i64), FindError> {
    let mut conn = Conn::new(opts).await.map_err(|source| FindError::Sql {
        what: "connect to the upstream",
        source,
    })?;
    let v: Option<(Option<String>, Option<String>)> = conn
        .exec_first(
            "SELECT CAST(UNIX_TIMESTAMP(CAST(? AS DATETIME)) AS CHAR), CAST(TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS CHAR)",
            (datetime,),
        )
        .await
        .map_err(|source| FindError::Sql {
            what: "convert the start time with the upstream's time zone",
            source,
        })?;
    let _ = conn.disconnect().await;
    let (unix, offset) = v.unwrap_or((None, None));
    let unix = unix.and_then(|s| {
        s.split('.')
            .next()
            .and_then(|i| i.parse::<i64>().ok())
            .filter(|t| *t > 0)
    });
    let offset = offset.and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    // TIMESTAMPDIFF truncates: round the offset to whole minutes.
    Ok((unix, (offset as f64 / 60.0).round() as i64 * 60))
}

/// A replica id for the finder's dumps: outside the range workers use (1..=499_999_999 and
/// the source's own `server-id`), different on every call.
fn throwaway_server_id() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    3_900_000_000 + u32::from_le_bytes(b) % 300_000_000
}

async fn binary_logs(opts: &Opts) -> Result<Vec<(String, u64)>, FindError> {
    let mut conn = Conn::new(opts.clone())
        .await
        .map_err(|source| FindError::Sql {
            what: "connect to the upstream",
            source,
        })?;
    let rows: Vec<mysql_async::Row> =
        conn.query("SHOW BINARY LOGS")
            .await
            .map_err(|source| FindError::Sql {
                what: "SHOW BINARY LOGS",
                source,
            })?;
    let _ = conn.disconnect().await;
    let mut out = Vec::new();
    for r in rows {
        let name: Option<String> = r.get(0);
        let size: Option<String> = r.get(1);
        if let Some(name) = name {
            out.push((name, size.and_then(|s| s.parse().ok()).unwrap_or(0)));
        }
    }
    Ok(out)
}

async fn open(opts: &Opts, file: &str) -> Result<BinlogStream, FindError> {
    let at = StartAt::Position(Position {
        file: file.to_string(),
        pos: 4,
    });
    open_stream(opts.clone(), throwaway_server_id(), &at, None, true)
        .await
        .map_err(|source| FindError::Sql {
            what: "open a binlog stream",
            source,
        })
}

/// The timestamp of `file`'s first real event (its FORMAT_DESCRIPTION); `None` for a file with
/// no event (cannot happen on a server that writes it).
async fn first_time(opts: &Opts, file: &str) -> Result<Option<u32>, FindError> {
    let mut stream = open(opts, file).await?;
    let mut out = None;
    while let Some(ev) = next_event(&mut stream).await {
        let ev = ev.map_err(|source| FindError::Sql {
            what: "read the binlog",
            source,
        })?;
        let h = ev.header();
        // The fake ROTATE the server sends first has no time and no position.
        if h.event_type_raw() == ROTATE && h.log_pos() == 0 {
            continue;
        }
        out = Some(h.timestamp());
        break;
    }
    let _ = stream.close().await;
    Ok(out)
}

/// Whether an event starts an event group (see the module doc); `in_txn` tracks BEGIN…COMMIT
/// on a server without GTID events.
fn starts_group(
    ev: &mysql_async::binlog::events::Event,
    seen_gtid: &mut bool,
    in_txn: &mut bool,
) -> bool {
    let t = ev.header().event_type_raw();
    match t {
        event_type::GTID | MYSQL_GTID | MYSQL_ANONYMOUS_GTID => {
            *seen_gtid = true;
            true
        }
        QUERY if !*seen_gtid => {
            let Ok(Some(mysql_async::binlog::events::EventData::QueryEvent(q))) = ev.read_data()
            else {
                return false;
            };
            let text = q.query();
            let word = text.trim();
            if word.eq_ignore_ascii_case("BEGIN") {
                *in_txn = true;
                true
            } else if word.eq_ignore_ascii_case("COMMIT") {
                *in_txn = false;
                false
            } else {
                !*in_txn
            }
        }
        XID => {
            *in_txn = false;
            false
        }
        _ => false,
    }
}

/// The first event group at or after Unix time `ts` in the binary logs of the server `opts`
/// connects to (see the module doc).
pub async fn find_by_time(opts: &Opts, ts: i64) -> Result<Found, FindError> {
    let logs = binary_logs(opts).await?;
    if logs.is_empty() {
        return Err(FindError::NoBinlog);
    }
    let target = u32::try_from(ts.max(0)).unwrap_or(u32::MAX);
    // The last file whose first event is before the time: the group sought starts in it (or
    // at the start of the next file).
    let (mut lo, mut hi) = (0usize, logs.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        match first_time(opts, &logs[mid].0).await? {
            Some(t) if t < target => lo = mid + 1,
            _ => hi = mid,
        }
    }
    if lo == 0 {
        return Ok(Found::BeforeFirst(Position {
            file: logs[0].0.clone(),
            pos: 4,
        }));
    }
    let idx = lo - 1;
    let (file, size) = (&logs[idx].0, logs[idx].1);
    let last = idx + 1 == logs.len();
    let mut stream = open(opts, file).await?;
    let mut pos: u64 = 4;
    let (mut seen_gtid, mut in_txn) = (false, false);
    let mut found = None;
    while let Some(ev) = next_event(&mut stream).await {
        let ev = ev.map_err(|source| FindError::Sql {
            what: "read the binlog",
            source,
        })?;
        let ev = compress::uncompress(ev).map_err(|e| FindError::Decode(e.to_string()))?;
        let h = ev.header();
        let t = h.event_type_raw();
        if t == ROTATE {
            if h.log_pos() == 0 {
                continue; // the fake ROTATE naming the file
            }
            // The real ROTATE at the end of the file: the next file starts after the time.
            break;
        }
        if t == FORMAT_DESCRIPTION && h.log_pos() == 0 {
            continue;
        }
        if starts_group(&ev, &mut seen_gtid, &mut in_txn) && h.timestamp() >= target {
            found = Some(pos);
            break;
        }
        let end = u64::from(h.log_pos());
        if end > pos {
            pos = end;
        }
        if !last && size > 0 && pos >= size {
            break;
        }
    }
    let _ = stream.close().await;
    Ok(match found {
        Some(p) => Found::At(Position {
            file: file.clone(),
            pos: p,
        }),
        // Past every event of the last file: nothing at or after the time yet.
        None if last => Found::TooLate,
        // Every group of this file is older: the next file's first group is the one.
        None => Found::At(Position {
            file: logs[idx + 1].0.clone(),
            pos: 4,
        }),
    })
}
