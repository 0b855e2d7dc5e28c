//! `start-task --start-time` and `check-task --start-time` (DM v6+): the time's format, and
//! where each source starts for it.
//!
//! [`parse`] checks the format as DM does (`YYYY-MM-DD HH:MM:SS`, `T` allowed between date
//! and time, an optional `Z`, `+08:00` or `+0800`); a bad one is DM's "error while parse
//! start-time". [`resolve`] turns the time into a binlog position on one source: a time
//! without an offset is read in the upstream's time zone (DM's `upstreamTZ`), then
//! [`crate::binlog::time_finder`] finds the first event group at or after it. A time before the
//! oldest binlog gives that binlog's start (as DM does); a time after the last event is DM's
//! 20057.
//!
//! The master resolves the time once, at start-task, and starts each source's sync unit there
//! as if the task's `meta` said so (its checkpoint is cleared, as DM's start time overrides
//! it); `get-config` then shows that position as the instance's `meta`. Only `incremental`
//! tasks take a start time: a `full` task does not read the binlog and an `all` task starts
//! where its dump ends.

use crate::binlog::Position;
use crate::binlog::time_finder::{self, Found};
use crate::config::source::SourceConfig;

use super::MasterError;

/// DM's `StartTimeFormatHint`.
pub const FORMAT_HINT: &str = "'2006-01-02 15:04:05', '2006-01-02T15:04:05', '2006-01-02 15:04:05+08:00', '2006-01-02T15:04:05+08:00', '2006-01-02 15:04:05+0800', or '2006-01-02T15:04:05+0800'";

/// A parsed start time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartTime {
    /// As written.
    pub raw: String,
    /// `YYYY-MM-DD HH:MM:SS`.
    pub datetime: String,
    /// Seconds east of UTC when the time names its offset; `None`: the upstream's time zone.
    pub offset: Option<i64>,
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// The start time, or DM's message for a bad one.
pub fn parse(raw: &str) -> Result<StartTime, String> {
    let bad = || {
        format!(
            "error while parse start-time, expected in the format like {FORMAT_HINT}: unsupported start-time format {raw:?}, expected one of {FORMAT_HINT}"
        )
    };
    let s = raw.trim();
    if s.len() < 19 || !s.is_char_boundary(19) {
        return Err(bad());
    }
    let (dt, zone) = s.split_at(19);
    let b = dt.as_bytes();
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| digits(&dt[r]);
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59
    {
        return Err(bad());
    }
    let offset = match zone {
        "" => None,
        "Z" => Some(0),
        z => {
            let (sign, rest) = match z.as_bytes()[0] {
                b'+' => (1, &z[1..]),
                b'-' => (-1, &z[1..]),
                _ => return Err(bad()),
            };
            let rest = rest.replacen(':', "", 1);
            if rest.len() != 4 {
                return Err(bad());
            }
            let (Some(oh), Some(om)) = (digits(&rest[..2]), digits(&rest[2..])) else {
                return Err(bad());
            };
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            Some(sign * (oh * 3600 + om * 60))
        }
    };
    Ok(StartTime {
        raw: raw.to_string(),
        datetime: format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{se:02}"),
        offset,
    })
}

impl StartTime {
    /// Unix seconds when the time names its offset.
    pub fn unix_with_offset(&self) -> Option<i64> {
        self.offset.map(|off| self.unix_at_offset(off))
    }

    /// Unix seconds of the time read at `off` seconds east of UTC.
    pub fn unix_at_offset(&self, off: i64) -> i64 {
        let p = |r: std::ops::Range<usize>| self.datetime[r].parse::<i64>().unwrap_or(0);
        let (y, m, d) = (p(0..4), p(5..7), p(8..10));
        // Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + p(11..13) * 3600 + p(14..16) * 60 + p(17..19) - off
    }
}

/// The position on `source` where a task started at `t` begins (see the module doc).
pub async fn resolve(source: &SourceConfig, t: &StartTime) -> Result<Position, MasterError> {
    let opts = source.from.mysql_opts(Vec::new());
    let lookup = |e: time_finder::FindError| MasterError::StartTimeLookup {
        source_id: source.source_id.clone(),
        why: e.to_string(),
    };
    let ts = match t.unix_with_offset() {
        Some(ts) => ts,
        None => {
            let (unix, offset) = time_finder::upstream_time(opts.clone(), &t.datetime)
                .await
                .map_err(lookup)?;
            // Beyond the server's UNIX_TIMESTAMP: its zone's current offset.
            unix.unwrap_or_else(|| t.unix_at_offset(offset))
        }
    };
    match time_finder::find_by_time(&opts, ts).await.map_err(lookup)? {
        Found::At(p) => {
            tracing::info!(source = %source.source_id, start_time = %t.raw, position = %p, "start-time: found the binlog position");
            Ok(p)
        }
        Found::BeforeFirst(p) => {
            tracing::warn!(source = %source.source_id, start_time = %t.raw, position = %p, "start-time is before the oldest binlog: starting at its beginning");
            Ok(p)
        }
        Found::TooLate => Err(MasterError::StartTimeTooLate(t.raw.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_dm_takes_them() {
        let ok = [
            ("2006-01-02 15:04:05", "2006-01-02 15:04:05", None),
            ("2006-01-02T15:04:05", "2006-01-02 15:04:05", None),
            ("2006-01-02 15:04:05Z", "2006-01-02 15:04:05", Some(0)),
            (
                "2006-01-02 15:04:05+08:00",
                "2006-01-02 15:04:05",
                Some(8 * 3600),
            ),
            (
                "2006-01-02T15:04:05-0130",
                "2006-01-02 15:04:05",
                Some(-5400),
            ),
            ("2024-02-29 00:00:00", "2024-02-29 00:00:00", None),
        ];
        for (raw, dt, off) in ok {
            let t = parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!((t.datetime.as_str(), t.offset), (dt, off), "{raw}");
        }
        for raw in [
            "20060102 150405",
            "2006-01-02",
            "2006-01-02 15:04",
            "2006-13-02 15:04:05",
            "2023-02-29 00:00:00",
            "2006-01-02 24:00:00",
            "2006-01-02 15:04:05+8",
            "2006-01-02 15:04:05 +08:00",
            "",
            "２００６-01-02 15:04:05",
        ] {
            let e = parse(raw).unwrap_err();
            assert!(e.starts_with("error while parse start-time"), "{raw}: {e}");
        }
    }

    #[test]
    fn offsets_give_unix_time() {
        let cases = [
            ("1970-01-01 00:00:00Z", 0),
            ("2006-01-02 15:04:05+00:00", 1_136_214_245),
            ("2006-01-02 23:04:05+08:00", 1_136_214_245),
            ("2000-03-01 00:00:00Z", 951_868_800),
        ];
        for (raw, want) in cases {
            assert_eq!(parse(raw).unwrap().unix_with_offset(), Some(want), "{raw}");
        }
        assert_eq!(
            parse("2006-01-02 15:04:05").unwrap().unix_with_offset(),
            None
        );
    }
}
