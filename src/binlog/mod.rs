//! Reading a MariaDB binary log over the replication protocol, on top of mysql_async.
//!
//! mysql_async/mysql_common decode MySQL's events; MariaDB needs a thin layer of its own
//! (reference: ../shared/reference/crates.md): the connection must announce
//! `@mariadb_slave_capability=4` or MariaDB hides its GTID events; MariaDB's GTID (162),
//! GTID_LIST (163) and BINLOG_CHECKPOINT (161) events arrive undecoded and are parsed here; and the
//! first fake ROTATE carries the 4 checksum bytes glued to the file name. The sync unit (worker)
//! is the caller; this module never writes anywhere.
//!
//! - [`compress`] — MariaDB's compressed events (165–171) back to plain ones (call
//!   [`compress::uncompress`] on every event before [`decode`]).
//! - [`rows`] — rows events to full rows of [`crate::dml::Value`] with the table metadata.

pub mod compress;
pub mod rows;
pub mod time_finder;

use std::fmt;

use futures_util::StreamExt;
use mysql_async::binlog::events::{Event, EventData};
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Opts, prelude::Queryable};

/// MariaDB event type codes mysql_common does not decode.
pub mod event_type {
    pub const BINLOG_CHECKPOINT: u8 = 161;
    pub const GTID: u8 = 162;
    pub const GTID_LIST: u8 = 163;
    pub const START_ENCRYPTION: u8 = 164;
}

/// A binlog position: file name and byte offset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

impl fmt::Display for Position {
    /// DM's (go-mysql's) form: `(mysql-bin.000001, 1234)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.file, self.pos)
    }
}

/// A MariaDB GTID `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// Why a text is not a MariaDB GTID or GTID set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidParseError {
    #[error(
        "{0:?} is a MySQL GTID set (uuid:interval); dm-rs reads MariaDB binlogs, whose GTIDs are domain-server-sequence, e.g. 0-1-42 (SELECT @@gtid_binlog_pos on the upstream)"
    )]
    MySqlForm(String),
    #[error("{0:?} is not a MariaDB GTID: expected domain-server-sequence, e.g. 0-1-42")]
    Malformed(String),
    #[error("{gtid:?}: {part} {value:?} is not a number in range")]
    Number {
        gtid: String,
        part: &'static str,
        value: String,
    },
    #[error(
        "domain {domain} appears twice ({first} and {second}); a GTID position has one GTID per domain"
    )]
    DuplicateDomain {
        domain: u32,
        first: MariaGtid,
        second: MariaGtid,
    },
    #[error("empty GTID in list {0:?} (a stray comma?)")]
    Empty(String),
}

impl std::str::FromStr for MariaGtid {
    type Err = GtidParseError;

    /// `domain-server-sequence`, each a decimal number (`0-1-42`); blanks around are ignored.
    fn from_str(s: &str) -> Result<MariaGtid, GtidParseError> {
        let t = s.trim();
        if t.contains(':') {
            return Err(GtidParseError::MySqlForm(t.to_string()));
        }
        let parts: Vec<&str> = t.split('-').collect();
        let [d, srv, n] = parts[..] else {
            return Err(GtidParseError::Malformed(t.to_string()));
        };
        fn num<T: std::str::FromStr>(
            gtid: &str,
            part: &'static str,
            v: &str,
        ) -> Result<T, GtidParseError> {
            // Digits only: `str::parse` would accept a leading `+`.
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(GtidParseError::Malformed(gtid.to_string()));
            }
            v.parse().map_err(|_| GtidParseError::Number {
                gtid: gtid.to_string(),
                part,
                value: v.to_string(),
            })
        }
        Ok(MariaGtid {
            domain: num(t, "domain", d)?,
            server: num(t, "server_id", srv)?,
            seq: num(t, "sequence", n)?,
        })
    }
}

/// A MariaDB GTID position: at most one GTID per replication domain, as in `@@gtid_binlog_pos`
/// or `@@gtid_slave_pos` (`0-1-42,1-2-7`). Parsed with `str::parse`; displays in domain order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    by_domain: std::collections::BTreeMap<u32, MariaGtid>,
}

impl GtidSet {
    /// True for the empty position (the empty string).
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The GTIDs keyed by domain.
    pub fn by_domain(&self) -> &std::collections::BTreeMap<u32, MariaGtid> {
        &self.by_domain
    }

    /// The GTIDs in domain order.
    pub fn iter(&self) -> impl Iterator<Item = &MariaGtid> {
        self.by_domain.values()
    }
}

impl From<GtidSet> for std::collections::BTreeMap<u32, MariaGtid> {
    fn from(set: GtidSet) -> Self {
        set.by_domain
    }
}

impl std::str::FromStr for GtidSet {
    type Err = GtidParseError;

    /// A comma-separated list of [`MariaGtid`]s; the empty (or blank) string is the empty set.
    /// A MySQL UUID set, a stray comma or a domain given twice is an error.
    fn from_str(s: &str) -> Result<GtidSet, GtidParseError> {
        let mut set = GtidSet::default();
        if s.trim().is_empty() {
            return Ok(set);
        }
        if s.contains(':') {
            return Err(GtidParseError::MySqlForm(s.trim().to_string()));
        }
        for part in s.split(',') {
            if part.trim().is_empty() {
                return Err(GtidParseError::Empty(s.trim().to_string()));
            }
            let g: MariaGtid = part.parse()?;
            if let Some(first) = set.by_domain.insert(g.domain, g) {
                return Err(GtidParseError::DuplicateDomain {
                    domain: g.domain,
                    first,
                    second: g,
                });
            }
        }
        Ok(set)
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.by_domain.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

/// MariaDB's GTID event: the GTID and its flags (0x01 standalone, 0x20 DDL, 0x08 transactional…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtidEvent {
    pub gtid: MariaGtid,
    pub flags: u8,
}

impl GtidEvent {
    /// A standalone event group (DDL or non-transactional), not followed by XID.
    pub fn is_standalone(&self) -> bool {
        self.flags & 0x01 != 0
    }
}

/// Parses a GTID (162) event body: `seq u64, domain u32, flags u8, …`; server id from the header.
pub fn parse_gtid(data: &[u8], server_id: u32) -> Option<GtidEvent> {
    let seq = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
    let flags = *data.get(12)?;
    Some(GtidEvent {
        gtid: MariaGtid {
            domain,
            server: server_id,
            seq,
        },
        flags,
    })
}

/// Parses a GTID_LIST (163) body: `u32 count (low 28 bits)`, then `count × (domain, server, seq)`.
pub fn parse_gtid_list(data: &[u8]) -> Option<Vec<MariaGtid>> {
    let count = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) & 0x0fff_ffff;
    let mut out = Vec::with_capacity(count.min(1024) as usize);
    for i in 0..count as usize {
        let o = 4 + i * 16;
        let e = data.get(o..o + 16)?;
        out.push(MariaGtid {
            domain: u32::from_le_bytes(e[0..4].try_into().ok()?),
            server: u32::from_le_bytes(e[4..8].try_into().ok()?),
            seq: u64::from_le_bytes(e[8..16].try_into().ok()?),
        });
    }
    Some(out)
}

/// Parses a BINLOG_CHECKPOINT (161) body: `u32 len`, then the file name.
pub fn parse_checkpoint(data: &[u8]) -> Option<String> {
    let len = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) as usize;
    let name = data.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// The first fake ROTATE (before any FORMAT_DESCRIPTION) has the 4 checksum bytes glued to the
/// name: when `name` is the requested file plus 4 bytes, the requested file is the true name.
pub fn fix_rotate_name(raw: &[u8], requested: &str) -> String {
    if !requested.is_empty()
        && raw.len() == requested.len() + 4
        && raw.starts_with(requested.as_bytes())
    {
        return requested.to_string();
    }
    // A GTID start requests no file: binlog names end in digits, the checksum bytes rarely do.
    // Binlog names end in `.NNNNNN`; with 4 checksum bytes glued on, the dot is not 7th from
    // the end any more.
    let looks_named = |b: &[u8]| {
        b.len() >= 7 && b[b.len() - 7] == b'.' && b[b.len() - 6..].iter().all(u8::is_ascii_digit)
    };
    if requested.is_empty()
        && raw.len() > 4
        && !looks_named(raw)
        && looks_named(&raw[..raw.len() - 4])
    {
        return String::from_utf8_lossy(&raw[..raw.len() - 4]).to_string();
    }
    String::from_utf8_lossy(raw).to_string()
}

/// What the MariaDB layer makes of one event.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// A ROTATE (real or fake), with the name fixed.
    Rotate(Position),
    /// MariaDB GTID: starts an event group.
    Gtid(GtidEvent),
    /// MariaDB GTID_LIST: the GTID state at the start of a file.
    GtidList(Vec<MariaGtid>),
    /// MariaDB BINLOG_CHECKPOINT.
    Checkpoint(String),
    /// Anything mysql_common decodes (QUERY, TABLE_MAP, rows, XID, FDE, HEARTBEAT…).
    Event(EventData<'a>),
    /// Events without a body we need (START_ENCRYPTION, ignorable or unknown types).
    Skip(u8),
}

/// Decodes one event through the MariaDB layer. `requested` is the file the stream was asked for.
pub fn decode<'a>(ev: &'a Event, requested: &str) -> std::io::Result<Decoded<'a>> {
    let header = ev.header();
    let t = header.event_type_raw();
    let bad = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed {what} event"),
        )
    };
    Ok(match t {
        event_type::GTID => {
            Decoded::Gtid(parse_gtid(ev.data(), header.server_id()).ok_or_else(|| bad("GTID"))?)
        }
        event_type::GTID_LIST => {
            Decoded::GtidList(parse_gtid_list(ev.data()).ok_or_else(|| bad("GTID_LIST"))?)
        }
        event_type::BINLOG_CHECKPOINT => Decoded::Checkpoint(
            parse_checkpoint(ev.data()).ok_or_else(|| bad("BINLOG_CHECKPOINT"))?,
        ),
        _ => match ev.read_data()? {
            Some(EventData::RotateEvent(r)) => Decoded::Rotate(Position {
                file: fix_rotate_name(r.name_raw(), requested),
                pos: r.position(),
            }),
            Some(data) => Decoded::Event(data),
            None => Decoded::Skip(t),
        },
    })
}

/// Where a binlog stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    Position(Position),
    /// Right after this MariaDB GTID state (`d-s-n[,…]`), through `@slave_connect_state`
    /// (MariaDB answers MySQL's COM_BINLOG_DUMP_GTID with an error); the first (fake) ROTATE
    /// names the file the stream starts in.
    Gtid(String),
}

/// Opens a binlog stream on a MariaDB primary, as replica `server_id`. `heartbeat` asks the
/// primary for a heartbeat event that often on an idle stream; `non_blocking` ends the stream
/// at the current end of the log instead of waiting.
pub async fn open_stream(
    opts: Opts,
    server_id: u32,
    at: &StartAt,
    heartbeat: Option<std::time::Duration>,
    non_blocking: bool,
) -> Result<BinlogStream, mysql_async::Error> {
    let mut conn = Conn::new(opts).await?;
    conn.query_drop("SET @mariadb_slave_capability=4").await?;
    if let Some(h) = heartbeat {
        conn.query_drop(format!("SET @master_heartbeat_period={}", h.as_nanos()))
            .await?;
    }
    let mut req = match at {
        StartAt::Position(p) => BinlogStreamRequest::new(server_id)
            .with_filename(p.file.as_bytes())
            .with_pos(p.pos),
        StartAt::Gtid(state) => {
            let escaped = state.replace(['\'', '\\'], "");
            conn.query_drop(format!("SET @slave_connect_state='{escaped}'"))
                .await?;
            conn.query_drop("SET @slave_gtid_strict_mode=1").await?;
            BinlogStreamRequest::new(server_id)
                .with_filename(&b""[..])
                .with_pos(4u64)
        }
    };
    if non_blocking {
        req = req.with_non_blocking();
    }
    conn.get_binlog_stream(req).await
}

/// [`open_stream`] from a position, without heartbeat.
pub async fn open(
    opts: Opts,
    server_id: u32,
    start: &Position,
    non_blocking: bool,
) -> Result<BinlogStream, mysql_async::Error> {
    open_stream(
        opts,
        server_id,
        &StartAt::Position(start.clone()),
        None,
        non_blocking,
    )
    .await
}

/// Reads the next event, or `None` at the end of a non-blocking stream.
pub async fn next_event(stream: &mut BinlogStream) -> Option<Result<Event, mysql_async::Error>> {
    stream.next().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_bodies_parse() {
        let mut b = 42u64.to_le_bytes().to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.push(0x29);
        let g = parse_gtid(&b, 101).unwrap();
        assert_eq!(g.gtid.to_string(), "3-101-42");
        assert!(g.is_standalone());
        assert!(parse_gtid(&b[..5], 1).is_none());

        let mut l = 2u32.to_le_bytes().to_vec();
        for (d, s, n) in [(0u32, 1u32, 7u64), (1, 2, 9)] {
            l.extend_from_slice(&d.to_le_bytes());
            l.extend_from_slice(&s.to_le_bytes());
            l.extend_from_slice(&n.to_le_bytes());
        }
        let list = parse_gtid_list(&l).unwrap();
        assert_eq!(
            list.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
            ["0-1-7", "1-2-9"]
        );
        assert!(parse_gtid_list(&l[..20]).is_none());

        let mut c = 6u32.to_le_bytes().to_vec();
        c.extend_from_slice(b"bin.01");
        assert_eq!(parse_checkpoint(&c).unwrap(), "bin.01");
        assert!(parse_checkpoint(&c[..6]).is_none());
    }

    #[test]
    fn first_rotate_name_loses_its_checksum_bytes() {
        let mut raw = b"mariadb-bin.000001".to_vec();
        raw.extend_from_slice(b"R<sT");
        assert_eq!(
            fix_rotate_name(&raw, "mariadb-bin.000001"),
            "mariadb-bin.000001"
        );
        assert_eq!(
            fix_rotate_name(b"mariadb-bin.000002", "mariadb-bin.000001"),
            "mariadb-bin.000002"
        );
        // A GTID start asks for no file: the name's shape tells.
        assert_eq!(fix_rotate_name(&raw, ""), "mariadb-bin.000001");
        assert_eq!(
            fix_rotate_name(b"mariadb-bin.000003", ""),
            "mariadb-bin.000003"
        );
        assert_eq!(
            Position {
                file: "f".into(),
                pos: 4
            }
            .to_string(),
            "(f, 4)"
        );
    }

    #[test]
    fn gtid_sets_parse_from_mariadb_positions() {
        let g = |d, s, n| MariaGtid {
            domain: d,
            server: s,
            seq: n,
        };
        let ok: [(&str, &[MariaGtid], &str); 7] = [
            ("", &[], ""),
            ("  ", &[], ""),
            ("0-1-42", &[g(0, 1, 42)], "0-1-42"),
            (" 0-1-42 ", &[g(0, 1, 42)], "0-1-42"),
            ("1-2-7,0-1-42", &[g(0, 1, 42), g(1, 2, 7)], "0-1-42,1-2-7"),
            ("0-1-1, 2-3-4", &[g(0, 1, 1), g(2, 3, 4)], "0-1-1,2-3-4"),
            (
                "4294967295-4294967295-18446744073709551615",
                &[g(u32::MAX, u32::MAX, u64::MAX)],
                "4294967295-4294967295-18446744073709551615",
            ),
        ];
        for (text, want, shown) in ok {
            let set: GtidSet = match text.parse() {
                Ok(s) => s,
                Err(e) => panic!("{text:?}: {e}"),
            };
            assert_eq!(set.iter().copied().collect::<Vec<_>>(), want, "{text:?}");
            assert_eq!(set.to_string(), shown, "{text:?}");
            assert_eq!(set.is_empty(), want.is_empty());
        }
    }

    #[test]
    fn malformed_gtid_sets_are_errors_not_nothing() {
        let bad: [(&str, &str); 12] = [
            (
                "3ccc475b-2343-11e7-be21-6c0b84d59f30:1-14",
                "MySQL GTID set",
            ),
            ("0-1", "not a MariaDB GTID"),
            ("0-1-2-3", "not a MariaDB GTID"),
            ("0_1_2", "not a MariaDB GTID"),
            ("0-1-x", "not a MariaDB GTID"),
            ("0-1-+5", "not a MariaDB GTID"),
            ("-1-2", "not a MariaDB GTID"),
            ("0-1-2,", "empty GTID"),
            (",0-1-2", "empty GTID"),
            ("0-1-2,,1-1-1", "empty GTID"),
            (
                "4294967296-1-2",
                "domain \"4294967296\" is not a number in range",
            ),
            ("0-1-2,0-2-3", "domain 0 appears twice (0-1-2 and 0-2-3)"),
        ];
        for (text, want) in bad {
            match text.parse::<GtidSet>() {
                Ok(s) => panic!("{text:?} parsed as {s}"),
                Err(e) => assert!(e.to_string().contains(want), "{text:?}: {e}"),
            }
        }
        assert!("0-1-2".parse::<MariaGtid>().is_ok());
        assert!("0-1-2,1-1-1".parse::<MariaGtid>().is_err());
    }
}
