//! DM's dump `metadata` file (dumpling's and mydumper ≤ 0.13's format), written by the dump
//! unit last and read by the load unit (query-status' `metaBinlog`) and by the sync unit (where
//! an `all` task's binlog replication starts).
//!
//! ```text
//! Started dump at: 2026-11-30 04:00:00
//! SHOW MASTER STATUS:
//!     Log: mariadb-bin.000003
//!     Pos: 1274
//!     GTID:0-1-12
//!
//! SHOW MASTER STATUS: /* AFTER CONNECTION POOL ESTABLISHED */
//!     Log: mariadb-bin.000003
//!     Pos: 2010
//!     GTID:0-1-15
//!
//! Finished dump at: 2026-11-30 04:00:09
//! ```
//!
//! The first block is where replication starts; the after-connection block, when present, is
//! where safe mode may end (DM's meaning). dm-rs writes the earliest and the latest of its
//! dump sessions' snapshots there. Parsing follows DM's rules: headers matched after trimming,
//! `key: value` lines, GTID continuation lines appended until a blank line, a trailing `,`
//! dropped, `SHOW SLAVE STATUS:` blocks skipped. (The field lines start with a tab.)

use super::BinlogLoc;
use crate::worker::error::{UnitError, code};

/// A parsed (or to be written) metadata file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpMeta {
    pub started: String,
    /// `SHOW MASTER STATUS:` (also MySQL 8.4's `SHOW BINARY LOG STATUS:`).
    pub master: Option<BinlogLoc>,
    /// `SHOW MASTER STATUS: /* AFTER CONNECTION POOL ESTABLISHED */`.
    pub after_conn: Option<BinlogLoc>,
    pub finished: String,
}

const MASTER: &str = "SHOW MASTER STATUS:";
const BINARY_LOG: &str = "SHOW BINARY LOG STATUS:";
const AFTER: &str = "SHOW MASTER STATUS: /* AFTER CONNECTION POOL ESTABLISHED */";
const SLAVE: &str = "SHOW SLAVE STATUS:";

impl DumpMeta {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = format!("Started dump at: {}\n", self.started);
        let block = |s: &mut String, head: &str, l: &BinlogLoc| {
            s.push_str(head);
            s.push('\n');
            s.push_str(&format!(
                "\tLog: {}\n\tPos: {}\n\tGTID:{}\n\n",
                l.file, l.pos, l.gtid
            ));
        };
        if let Some(m) = &self.master {
            block(&mut s, MASTER, m);
        }
        if let Some(a) = &self.after_conn {
            block(&mut s, AFTER, a);
        }
        s.push_str(&format!("Finished dump at: {}\n", self.finished));
        s
    }

    /// Parses a metadata file's text. `path` names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<DumpMeta, UnitError> {
        let bad = |why: &str| {
            UnitError::new(
                code::PARSE_META,
                "internal",
                format!("parse mydumper metadata error: {why}, metadata: {text}"),
            )
            .workaround(format!(
                "The dump's metadata file {path} is damaged: dump again (start-task --remove-meta)."
            ))
        };
        let mut meta = DumpMeta::default();
        #[derive(PartialEq)]
        enum In {
            None,
            Master,
            After,
            Slave,
        }
        let mut section = In::None;
        let mut cur = BinlogLoc::default();
        let mut in_gtid = false;
        let close = |section: &In, cur: &mut BinlogLoc, meta: &mut DumpMeta| {
            let loc = std::mem::take(cur);
            match section {
                In::Master => meta.master = Some(loc),
                In::After => meta.after_conn = Some(loc),
                _ => {}
            }
        };
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() {
                if section != In::None {
                    close(&section, &mut cur, &mut meta);
                }
                section = In::None;
                in_gtid = false;
                continue;
            }
            if section == In::None {
                if let Some(t) = line.strip_prefix("Started dump at:") {
                    meta.started = t.trim().to_string();
                } else if let Some(t) = line.strip_prefix("Finished dump at:") {
                    meta.finished = t.trim().to_string();
                } else if line == AFTER {
                    section = In::After;
                } else if line == MASTER || line == BINARY_LOG {
                    section = In::Master;
                } else if line.starts_with(SLAVE) {
                    section = In::Slave;
                }
                continue;
            }
            if section == In::Slave {
                continue;
            }
            match line.split_once(':') {
                Some(("Log", v)) => {
                    cur.file = v.trim().to_string();
                    in_gtid = false;
                }
                Some(("Pos", v)) => {
                    cur.pos = v
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| bad(&format!("Pos {:?} is not a number", v.trim())))?
                        .into();
                    in_gtid = false;
                }
                Some(("GTID", v)) => {
                    cur.gtid = v.trim().trim_end_matches(',').to_string();
                    in_gtid = true;
                }
                _ if in_gtid => {
                    let more = line.trim_end_matches(',');
                    if !cur.gtid.is_empty() {
                        cur.gtid.push(',');
                    }
                    cur.gtid.push_str(more);
                }
                _ => {}
            }
        }
        if section != In::None {
            close(&section, &mut cur, &mut meta);
        }
        if let Some(a) = &meta.after_conn
            && (a.file.is_empty() || a.pos == 0)
        {
            return Err(bad("the after-connection block has no Log or Pos"));
        }
        Ok(meta)
    }

    /// The replication start: the master block, which must have a file and a position (DM's
    /// ErrMetadataNoBinlogLoc otherwise).
    pub fn start(&self, path: &str) -> Result<&BinlogLoc, UnitError> {
        match &self.master {
            Some(m) if !m.file.is_empty() && m.pos != 0 => Ok(m),
            _ => Err(UnitError::new(
                code::META_NO_BINLOG,
                "upstream",
                format!("didn't found binlog location in dumped metadata file {path}"),
            )
            .workaround("The dump has no binlog position (was the upstream's binary log on?): enable log_bin upstream and dump again (start-task --remove-meta).")),
        }
    }
}

/// The current UTC time as the metadata file writes it (`2006-01-02 15:04:05`).
pub fn now_string() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

/// `secs` since the epoch as `YYYY-MM-DD hh:mm:ss` (UTC).
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(file: &str, pos: u64, gtid: &str) -> BinlogLoc {
        BinlogLoc {
            file: file.into(),
            pos,
            gtid: gtid.into(),
        }
    }

    #[test]
    fn render_and_parse_round_trip() {
        let m = DumpMeta {
            started: "2026-11-30 04:00:00".into(),
            master: Some(loc("mariadb-bin.000003", 1274, "0-1-12")),
            after_conn: Some(loc("mariadb-bin.000003", 2010, "0-1-15")),
            finished: "2026-11-30 04:00:09".into(),
        };
        let text = m.render();
        assert!(text.contains("\tGTID:0-1-12\n"), "{text}");
        assert_eq!(DumpMeta::parse(&text, "metadata").unwrap(), m);
    }

    #[test]
    fn parses_what_dm_and_mydumper_write() {
        let cases: Vec<(&str, Option<BinlogLoc>, Option<BinlogLoc>)> = vec![
            (
                // dumpling, MySQL GTID sets over two lines, trailing comma.
                "Started dump at: 2020-05-21 18:14:49\nSHOW MASTER STATUS:\n\tLog: mysql-bin.000003\n\tPos: 1274\n\tGTID:5b5a8e4e-9b43-11ea-900d-0242ac170002:1-10,\n5b642cb6-9b43-11ea-8914-0242ac170003:1-7\n\nFinished dump at: 2020-05-21 18:14:49\n",
                Some(loc(
                    "mysql-bin.000003",
                    1274,
                    "5b5a8e4e-9b43-11ea-900d-0242ac170002:1-10,5b642cb6-9b43-11ea-8914-0242ac170003:1-7",
                )),
                None,
            ),
            (
                // mydumper 0.10 on MariaDB, with a slave block to skip.
                "Started dump at: 2026-11-30 01:02:03\nSHOW MASTER STATUS:\n\tLog: mariadb-bin.000001\n\tPos: 328\n\tGTID:0-1-1\n\nSHOW SLAVE STATUS:\n\tHost: 10.0.0.1\n\tLog: x.000009\n\tPos: 99\n\tGTID:0-9-9\n\nFinished dump at: 2026-11-30 01:02:04\n",
                Some(loc("mariadb-bin.000001", 328, "0-1-1")),
                None,
            ),
            (
                // No GTID, after-connection block.
                "SHOW MASTER STATUS:\n\tLog: b.000001\n\tPos: 4\n\tGTID:\n\nSHOW MASTER STATUS: /* AFTER CONNECTION POOL ESTABLISHED */\n\tLog: b.000001\n\tPos: 900\n\tGTID:\n\n",
                Some(loc("b.000001", 4, "")),
                Some(loc("b.000001", 900, "")),
            ),
            (
                // MySQL 8.4's header, and CRLF line ends.
                "SHOW BINARY LOG STATUS:\r\n\tLog: binlog.000002\r\n\tPos: 157\r\n\tGTID:\r\n\r\n",
                Some(loc("binlog.000002", 157, "")),
                None,
            ),
            ("Started dump at: x\nFinished dump at: y\n", None, None),
        ];
        for (text, master, after) in cases {
            let m = DumpMeta::parse(text, "metadata").unwrap();
            assert_eq!(m.master, master, "{text}");
            assert_eq!(m.after_conn, after, "{text}");
        }
    }

    #[test]
    fn bad_metadata_gives_dm_codes() {
        let e = DumpMeta::parse("SHOW MASTER STATUS:\n\tLog: b.1\n\tPos: x\n", "m").unwrap_err();
        assert_eq!(e.code, code::PARSE_META);
        let e = DumpMeta::parse(
            "SHOW MASTER STATUS: /* AFTER CONNECTION POOL ESTABLISHED */\n\tGTID:\n\n",
            "m",
        )
        .unwrap_err();
        assert_eq!(e.code, code::PARSE_META);
        let m =
            DumpMeta::parse("Started dump at: x\n\nFinished dump at: y\n", "/d/metadata").unwrap();
        let e = m.start("/d/metadata").unwrap_err();
        assert_eq!(e.code, code::META_NO_BINLOG);
        assert!(e.message.contains("/d/metadata"), "{}", e.message);
    }

    #[test]
    fn utc_times_format_like_go() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_796_000_645), "2026-11-30 01:04:05");
    }
}
