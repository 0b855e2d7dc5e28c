//! The relay log on disk, in DM's layout (`dm@v2.0.7:relay/meta.go`, `pkg/utils/relay.go`):
//!
//! ```text
//! <relay-dir>/server-uuid.index          one sub-directory per line, oldest first
//! <relay-dir>/0-1.000001/                MariaDB: <gtid_domain_id>-<server_id>.<suffix>
//!                                        (MySQL: <server_uuid>.<suffix>)
//!                mariadb-bin.000001      the upstream's binlog files, byte for byte (magic,
//!                mariadb-bin.000002      FormatDescription, events at the upstream's offsets)
//!                relay.meta              binlog-name / binlog-pos / binlog-gtid (TOML)
//! ```
//!
//! A new sub-directory (suffix + 1) starts whenever the upstream server changes (or the relay
//! starts with none). `relay.meta` and the index are written atomically (temporary file,
//! fsync, rename); the meta position is always a transaction boundary whose bytes were
//! fsynced first. After a crash the last file is cut back to its last complete transaction
//! ([`recover`]), so the relay goes on from a clean end.
//!
//! Pure file logic: no network, no async. Table-tested below with real files in temporary
//! directories.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use mysql_async::binlog::events::{Event, EventData};
use mysql_common::binlog::EventStreamReader;
use mysql_common::binlog::consts::BinlogVersion;

use crate::binlog::Position;

/// The index file's name.
pub const INDEX: &str = "server-uuid.index";
/// The meta file's name (in each sub-directory).
pub const META: &str = "relay.meta";
/// In a sub-directory begun by switch-relay-master: the GTID set it starts after (a position in
/// it means this server's files only for a reader that has reached that set).
pub const START_GTID: &str = "dm-rs.start-gtid";
/// A binlog file's first four bytes.
pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
/// A binlog event header's length.
pub const HEADER_LEN: usize = 19;

/// DM's `relay.meta`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub binlog_name: String,
    pub binlog_pos: u64,
    pub binlog_gtid: String,
}

impl Meta {
    pub fn position(&self) -> Position {
        Position {
            file: self.binlog_name.clone(),
            pos: self.binlog_pos,
        }
    }

    /// DM's TOML form (three keys).
    pub fn to_toml(&self) -> String {
        format!(
            "binlog-name = {}\nbinlog-pos = {}\nbinlog-gtid = {}\n",
            toml_str(&self.binlog_name),
            self.binlog_pos,
            toml_str(&self.binlog_gtid)
        )
    }

    /// Reads the TOML form (the three keys; anything else is an error).
    pub fn from_toml(text: &str) -> Result<Meta, String> {
        let mut m = Meta::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: not `key = value`", n + 1))?;
            let (k, v) = (k.trim(), v.trim());
            match k {
                "binlog-name" => m.binlog_name = unquote(v, n)?,
                "binlog-gtid" => m.binlog_gtid = unquote(v, n)?,
                "binlog-pos" => {
                    m.binlog_pos = v
                        .parse()
                        .map_err(|e| format!("line {}: binlog-pos {v:?}: {e}", n + 1))?
                }
                other => return Err(format!("line {}: unknown key {other:?}", n + 1)),
            }
        }
        Ok(m)
    }
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn unquote(v: &str, n: usize) -> Result<String, String> {
    let inner = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .ok_or_else(|| format!("line {}: {v:?} is not a quoted string", n + 1))?;
    Ok(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A sub-directory name: `<uuid>.<6-digit suffix>`.
pub fn subdir_name(uuid: &str, suffix: u32) -> String {
    format!("{uuid}.{suffix:06}")
}

/// Splits `<uuid>.<suffix>` (DM's 28002 when it is not one).
pub fn parse_subdir(name: &str) -> Result<(String, u32), String> {
    let (uuid, suffix) = name
        .rsplit_once('.')
        .filter(|(u, s)| !u.is_empty() && s.len() == 6)
        .ok_or_else(|| format!("[code=28002] UUID (with suffix) {name} not valid"))?;
    let n = suffix
        .parse()
        .map_err(|_| format!("[code=28002] UUID (with suffix) {name} not valid"))?;
    Ok((uuid.to_string(), n))
}

/// The relay directory: its index and sub-directories.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    /// Sub-directory names, oldest first.
    pub subdirs: Vec<String>,
}

impl Layout {
    /// Reads `root`'s index (creating `root` when missing). Sub-directories must have
    /// consecutive suffixes (DM's 30001).
    pub fn open(root: &Path) -> Result<Layout, String> {
        fs::create_dir_all(root)
            .map_err(|e| format!("[code=30033] relay mkdir {}: {e}", root.display()))?;
        let index = root.join(INDEX);
        let text = match fs::read_to_string(&index) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("[code=30003] read {}: {e}", index.display())),
        };
        let subdirs: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let mut prev = 0;
        for s in &subdirs {
            let (_, n) = parse_subdir(s)?;
            if prev != 0 && n != prev + 1 {
                return Err(format!(
                    "[code=30001] UUID {s} suffix {n} should be 1 larger than previous suffix {prev}"
                ));
            }
            prev = n;
        }
        Ok(Layout {
            root: root.to_path_buf(),
            subdirs,
        })
    }

    /// The newest sub-directory's name.
    pub fn current(&self) -> Option<&str> {
        self.subdirs.last().map(String::as_str)
    }

    pub fn current_dir(&self) -> Option<PathBuf> {
        self.current().map(|s| self.root.join(s))
    }

    /// Adds the next sub-directory for `uuid` (suffix + 1; even for the same uuid, as DM does
    /// after a `RESET MASTER`), with `meta`, and rewrites the index.
    pub fn add_subdir(&mut self, uuid: &str, meta: &Meta) -> Result<PathBuf, String> {
        let next = match self.current() {
            Some(c) => parse_subdir(c)?.1 + 1,
            None => 1,
        };
        let name = subdir_name(uuid, next);
        let dir = self.root.join(&name);
        fs::create_dir_all(&dir)
            .map_err(|e| format!("[code=30033] relay mkdir {}: {e}", dir.display()))?;
        write_atomic(&dir.join(META), meta.to_toml().as_bytes())
            .map_err(|e| format!("[code=30006] flush relay.meta: {e}"))?;
        self.subdirs.push(name);
        self.write_index()?;
        Ok(dir)
    }

    fn write_index(&self) -> Result<(), String> {
        let mut text = String::new();
        for s in &self.subdirs {
            text.push_str(s);
            text.push('\n');
        }
        write_atomic(&self.root.join(INDEX), text.as_bytes())
            .map_err(|e| format!("[code=30007] update UUID index file {}: {e}", INDEX))
    }

    /// Drops index entries whose directory is gone (after a purge of whole sub-directories).
    pub fn trim(&mut self) -> Result<(), String> {
        let before = self.subdirs.len();
        let root = self.root.clone();
        self.subdirs.retain(|s| root.join(s).is_dir());
        if self.subdirs.len() != before {
            self.write_index()?;
        }
        Ok(())
    }
}

/// Reads a sub-directory's meta.
pub fn read_meta(dir: &Path) -> Result<Meta, String> {
    let path = dir.join(META);
    let text = fs::read_to_string(&path)
        .map_err(|e| format!("[code=30003] read {}: {e}", path.display()))?;
    Meta::from_toml(&text).map_err(|e| format!("[code=30003] {}: {e}", path.display()))
}

/// Writes a sub-directory's meta atomically.
pub fn write_meta(dir: &Path, meta: &Meta) -> Result<(), String> {
    write_atomic(&dir.join(META), meta.to_toml().as_bytes())
        .map_err(|e| format!("[code=30006] flush relay.meta: {e}"))
}

/// The sequence number of a binlog file name `<base>.<NNNNNN>` (None when it is not one).
pub fn binlog_seq(name: &str) -> Option<u64> {
    let (base, n) = name.rsplit_once('.')?;
    if base.is_empty() {
        return None;
    }
    n.parse().ok()
}

/// The relay binlog files of `dir` (names that are not the meta or a temporary file), in
/// upstream order (`base.NNNNNN` by number).
pub fn binlog_files(dir: &Path) -> Vec<String> {
    let mut out: Vec<(String, u64)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != META && !n.starts_with('.'))
        .filter_map(|n| binlog_seq(&n).map(|seq| (n, seq)))
        .collect();
    out.sort_by_key(|(_, s)| *s);
    out.into_iter().map(|(n, _)| n).collect()
}

/// One event's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub timestamp: u32,
    pub type_code: u8,
    pub server_id: u32,
    pub size: u32,
    pub log_pos: u32,
    pub flags: u16,
}

impl Header {
    pub fn parse(b: &[u8]) -> Option<Header> {
        let b = b.get(..HEADER_LEN)?;
        let u32at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Header {
            timestamp: u32at(0),
            type_code: b[4],
            server_id: u32at(5),
            size: u32at(9),
            log_pos: u32at(13),
            flags: u16::from_le_bytes([b[17], b[18]]),
        })
    }
}

/// Event type codes the relay looks at.
pub mod types {
    pub const QUERY: u8 = 2;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const HEARTBEAT: u8 = 27;
    pub const ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_GTID: u8 = 162;
}

/// `LOG_EVENT_ARTIFICIAL_F`.
pub const ARTIFICIAL: u16 = 0x20;

/// Follows transaction boundaries through a stream of events (what [`recover`] cuts at and
/// where the writer saves its meta).
#[derive(Debug, Default, Clone)]
pub struct TxnEdge {
    in_txn: bool,
    /// A MariaDB standalone GTID group: ends with its next Query.
    standalone: bool,
}

impl TxnEdge {
    /// Feeds one parsed event; true when the stream is at a transaction boundary after it.
    pub fn after(&mut self, ev: &Event) -> bool {
        let t = ev.header().event_type_raw();
        match t {
            types::MARIADB_GTID => {
                // FL_STANDALONE (1): a statement of its own (DDL), ended by its Query.
                let standalone = ev.data().get(12).is_some_and(|f| f & 1 != 0);
                self.in_txn = true;
                self.standalone = standalone;
                false
            }
            types::XID => {
                self.in_txn = false;
                true
            }
            types::QUERY => {
                let q = match ev.read_data() {
                    Ok(Some(EventData::QueryEvent(q))) => q.query().trim().to_uppercase(),
                    _ => String::new(),
                };
                if q == "BEGIN" || q.starts_with("XA START") {
                    self.in_txn = true;
                    self.standalone = false;
                    return false;
                }
                if self.standalone
                    || !self.in_txn
                    || q == "COMMIT"
                    || q == "ROLLBACK"
                    || q.starts_with("XA ")
                {
                    self.in_txn = false;
                    self.standalone = false;
                    return true;
                }
                false
            }
            _ => !self.in_txn,
        }
    }

    pub fn in_txn(&self) -> bool {
        self.in_txn
    }
}

/// Reads whole events from a binlog file, from `offset` (after the file's FDE was read for
/// parsing); stops before a partial event.
pub struct FileEvents {
    file: File,
    reader: EventStreamReader,
    pub offset: u64,
    len: u64,
}

impl FileEvents {
    /// Opens `path`, checks the magic, reads its FormatDescription (for parsing), and places
    /// the cursor at `from` (≥ 4).
    pub fn open(path: &Path, from: u64) -> io::Result<FileEvents> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut magic = [0u8; 4];
        file.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a binlog file (bad magic)", path.display()),
            ));
        }
        let mut fe = FileEvents {
            file,
            reader: EventStreamReader::new(BinlogVersion::Version4),
            offset: 4,
            len,
        };
        // The FDE: read for parsing whatever the start.
        if fe.next_event()?.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} has no FormatDescription event", path.display()),
            ));
        }
        if from > fe.offset {
            fe.offset = from;
        }
        Ok(fe)
    }

    /// The file's current length (it may grow).
    pub fn refresh_len(&mut self) -> io::Result<u64> {
        self.len = self.file.metadata()?.len();
        Ok(self.len)
    }

    /// The next whole event (its bytes and parsed form), or None when the file ends here or
    /// only part of the next event is written.
    pub fn next_event(&mut self) -> io::Result<Option<(Vec<u8>, Event)>> {
        if self.len < self.offset + HEADER_LEN as u64 {
            return Ok(None);
        }
        let mut head = [0u8; HEADER_LEN];
        self.file.seek(SeekFrom::Start(self.offset))?;
        self.file.read_exact(&mut head)?;
        let h = Header::parse(&head).expect("19 bytes");
        if (h.size as usize) < HEADER_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a binlog event of {} bytes at offset {}",
                    h.size, self.offset
                ),
            ));
        }
        if self.len < self.offset + u64::from(h.size) {
            return Ok(None);
        }
        let mut bytes = vec![0u8; h.size as usize];
        bytes[..HEADER_LEN].copy_from_slice(&head);
        self.file.read_exact(&mut bytes[HEADER_LEN..])?;
        let ev = self
            .reader
            .read(&bytes[..])?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "empty event"))?;
        self.offset += u64::from(h.size);
        Ok(Some((bytes, ev)))
    }
}

/// Cuts `path` back to its last complete transaction at or after `from` (a known boundary,
/// e.g. the meta position; 4 to scan the whole file): a partial event or an unfinished
/// transaction at the end (a crash mid-write) goes. Returns the new length. A file without a
/// complete FormatDescription is emptied (length 0).
pub fn recover(path: &Path, from: u64) -> Result<u64, String> {
    let len = fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let mut events = match FileEvents::open(path, 4) {
        Ok(e) => e,
        Err(_) => {
            truncate(path, 0)?;
            return Ok(0);
        }
    };
    let mut edge = TxnEdge::default();
    let mut good = events.offset;
    let start = if from > good && from <= len {
        from
    } else {
        good
    };
    if start > good {
        events.offset = start;
        good = start;
    }
    loop {
        match events.next_event() {
            Ok(Some((_, ev))) => {
                if edge.after(&ev) {
                    good = events.offset;
                }
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
    if good < len {
        truncate(path, good)?;
    }
    Ok(good)
}

fn truncate(path: &Path, len: u64) -> Result<(), String> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.set_len(len)
        .map_err(|e| format!("truncate {}: {e}", path.display()))?;
    f.sync_all()
        .map_err(|e| format!("fsync {}: {e}", path.display()))
}

/// The relay files of `dir` that a purge up to (not including) `before` removes.
pub fn purgeable(dir: &Path, before: &str) -> Vec<String> {
    let Some(limit) = binlog_seq(before) else {
        return Vec::new();
    };
    binlog_files(dir)
        .into_iter()
        .filter(|n| binlog_seq(n).is_some_and(|s| s < limit))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_in_dm_toml() {
        let m = Meta {
            binlog_name: "mariadb-bin.000010".into(),
            binlog_pos: 63083620,
            binlog_gtid: "0-1-3328,1-2-7".into(),
        };
        let t = m.to_toml();
        assert_eq!(
            t,
            "binlog-name = \"mariadb-bin.000010\"\nbinlog-pos = 63083620\nbinlog-gtid = \"0-1-3328,1-2-7\"\n"
        );
        assert_eq!(Meta::from_toml(&t), Ok(m));
        for bad in [
            "binlog-pos = x",
            "nope",
            "binlog-name = unquoted",
            "other = 1",
        ] {
            assert!(Meta::from_toml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subdirs_are_numbered_and_the_index_lists_them() {
        let d = tempfile::tempdir().unwrap();
        let mut l = Layout::open(d.path()).unwrap();
        assert_eq!(l.current(), None);
        l.add_subdir("0-1", &Meta::default()).unwrap();
        l.add_subdir("0-1", &Meta::default()).unwrap();
        l.add_subdir("0-2", &Meta::default()).unwrap();
        assert_eq!(l.subdirs, ["0-1.000001", "0-1.000002", "0-2.000003"]);
        assert_eq!(
            fs::read_to_string(d.path().join(INDEX)).unwrap(),
            "0-1.000001\n0-1.000002\n0-2.000003\n"
        );
        assert_eq!(Layout::open(d.path()).unwrap().subdirs, l.subdirs);
        fs::remove_dir_all(d.path().join("0-1.000001")).unwrap();
        l.trim().unwrap();
        assert_eq!(l.subdirs, ["0-1.000002", "0-2.000003"]);
    }

    #[test]
    fn an_index_with_a_gap_or_a_bad_name_is_refused() {
        for (text, code) in [
            ("a.000001\na.000003\n", "30001"),
            ("nosuffix\n", "28002"),
            ("a.01\n", "28002"),
        ] {
            let d = tempfile::tempdir().unwrap();
            fs::write(d.path().join(INDEX), text).unwrap();
            let e = Layout::open(d.path()).unwrap_err();
            assert!(e.contains(code), "{text:?}: {e}");
        }
    }

    #[test]
    fn files_sort_by_number_and_purge_takes_the_older_ones() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b.000010", "b.000002", "b.000009", META, ".relay.meta.tmp"] {
            fs::write(d.path().join(n), b"").unwrap();
        }
        assert_eq!(binlog_files(d.path()), ["b.000002", "b.000009", "b.000010"]);
        assert_eq!(purgeable(d.path(), "b.000010"), ["b.000002", "b.000009"]);
        assert!(purgeable(d.path(), "b.000002").is_empty());
        assert!(purgeable(d.path(), "garbage").is_empty());
    }

    #[test]
    fn headers_parse_from_little_endian_bytes() {
        let mut b = vec![0u8; 19];
        b[0..4].copy_from_slice(&7u32.to_le_bytes());
        b[4] = types::XID;
        b[9..13].copy_from_slice(&31u32.to_le_bytes());
        b[13..17].copy_from_slice(&1000u32.to_le_bytes());
        b[17..19].copy_from_slice(&ARTIFICIAL.to_le_bytes());
        assert_eq!(
            Header::parse(&b),
            Some(Header {
                timestamp: 7,
                type_code: types::XID,
                server_id: 0,
                size: 31,
                log_pos: 1000,
                flags: ARTIFICIAL
            })
        );
        assert_eq!(Header::parse(&b[..18]), None);
    }

    #[test]
    fn a_file_that_is_not_a_binlog_is_emptied_by_recover() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.000001");
        fs::write(&p, b"\xfebin\x01\x02").unwrap();
        assert_eq!(recover(&p, 4).unwrap(), 0);
        assert_eq!(fs::metadata(&p).unwrap().len(), 0);
    }
}
