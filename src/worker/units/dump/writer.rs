//! Writing one chunk: rows (as the text protocol delivers them, on a `SET NAMES binary`
//! connection: the column's own bytes) rendered into dumpling's INSERT statements, files split by
//! chunk-filesize, each file written as `<name>.tmp` and renamed only when the whole chunk is
//! written and fsynced ([`ChunkWriter::commit`]).
//!
//! File layout (dumpling's): `/*!40101 SET NAMES binary*/;` then
//! ``INSERT INTO `tbl` (`c1`,`c2`) VALUES\n(…),\n(…);\n`` — a new INSERT when the statement
//! reaches statement-size, a new file when the file reaches chunk-filesize (after a whole row; a
//! statement never spans two files). No file for a chunk without rows.
//!
//! Values ([`ColKind`]): numbers bare (FLOAT columns are selected as `CAST(… AS DOUBLE)`, whose
//! text is the float's exact value, so they load back bit for bit); binary strings, BLOBs,
//! spatial values and BIT as `0x…` hex (`''` when empty); every other type quoted with
//! backslash escapes of `\0 ' " \ \n \r \x1a`; `NULL`.
//!
//! The hot path: rows are rendered into one reused buffer (no allocation per value) and handed
//! to a blocking writer in large pieces, double-buffered ([`FileSink`]) so rendering goes on
//! while the previous piece is written; the buffers come from a dump-wide [`BufPool`]
//! ([`render_pool`]) and go back to it when a file or chunk is done.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mysql_async::{Row, Value};

use crate::worker::units::bufpool::BufPool;
use crate::worker::units::full::naming;

/// The first line of every dump file.
pub const HEADER: &[u8] = b"/*!40101 SET NAMES binary*/;\n";
/// The buffer is handed to the file writer when it holds this much.
pub const FLUSH_AT: usize = 512 << 10;

/// The capacity of a render buffer: a flush's worth plus the longest row that may overshoot it
/// in the common case.
const BUF_CAP: usize = FLUSH_AT + (64 << 10);
/// Buffers a pool keeps at most (three per chunk writer in flight: its own, the file's spare,
/// the piece being written).
const POOL_MAX: usize = 16;

/// The dump's render buffers, reused across chunks and files (shared by its connections):
/// [`BUF_CAP`] each, at most [`POOL_MAX`] kept.
pub fn render_pool() -> BufPool {
    BufPool::new(BUF_CAP, BUF_CAP..=4 * BUF_CAP, POOL_MAX)
}

/// How a column's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// Numbers: the server's text as is.
    Bare,
    /// Text, dates and times, ENUM/SET, JSON: quoted with backslash escapes.
    Quoted,
    /// Binary strings, BLOBs, spatial values, BIT: hex.
    Hex,
}

impl ColKind {
    /// The kind of an information_schema.COLUMNS `DATA_TYPE` (with `CHARACTER_SET_NAME`).
    pub fn of(data_type: &str, charset: Option<&str>) -> ColKind {
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
            | "numeric" | "float" | "double" | "real" => ColKind::Bare,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "bit"
            | "geometry" | "point" | "linestring" | "polygon" | "multipoint"
            | "multilinestring" | "multipolygon" | "geometrycollection" | "inet4" | "inet6"
            | "uuid" => ColKind::Hex,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
                if charset.is_some_and(|c| c.eq_ignore_ascii_case("binary")) =>
            {
                ColKind::Hex
            }
            _ => ColKind::Quoted,
        }
    }
}

/// The SELECT expression of a column: FLOAT as its exact double value; MariaDB's INET4,
/// INET6 and UUID as their binary form (their text in a `SET NAMES binary` literal is refused
/// on load; the binary form loads back); others as they are.
pub fn select_expr(column: &str, data_type: &str) -> String {
    let q = super::chunking::quote_ident(column);
    match data_type.to_ascii_lowercase().as_str() {
        "float" => format!("CAST({q} AS DOUBLE)"),
        "inet4" => format!("CAST({q} AS BINARY(4))"),
        "inet6" | "uuid" => format!("CAST({q} AS BINARY(16))"),
        _ => q,
    }
}

/// The escape letter of each byte that needs one (0: none).
const ESCAPES: [u8; 256] = {
    let mut t = [0u8; 256];
    t[0] = b'0';
    t[b'\'' as usize] = b'\'';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[0x1a] = b'Z';
    t
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `v` as a quoted string literal with backslash escapes.
pub fn push_quoted(buf: &mut Vec<u8>, v: &[u8]) {
    buf.reserve(v.len() + 2);
    buf.push(b'\'');
    // Most values need no escape: two vectorised scans instead of a look-up per byte.
    if memchr::memchr3(b'\'', b'"', b'\\', v).is_none()
        && memchr::memchr3(0, b'\n', b'\r', v).is_none()
        && memchr::memchr(0x1a, v).is_none()
    {
        buf.extend_from_slice(v);
        buf.push(b'\'');
        return;
    }
    let mut start = 0;
    for (i, &b) in v.iter().enumerate() {
        let e = ESCAPES[b as usize];
        if e != 0 {
            buf.extend_from_slice(&v[start..i]);
            buf.push(b'\\');
            buf.push(e);
            start = i + 1;
        }
    }
    buf.extend_from_slice(&v[start..]);
    buf.push(b'\'');
}

/// Appends `v` as a hex literal (`''` when empty: `0x` alone is not a literal).
pub fn push_hex(buf: &mut Vec<u8>, v: &[u8]) {
    if v.is_empty() {
        buf.extend_from_slice(b"''");
        return;
    }
    buf.reserve(2 + 2 * v.len());
    buf.extend_from_slice(b"0x");
    for &b in v {
        buf.push(HEX[(b >> 4) as usize]);
        buf.push(HEX[(b & 15) as usize]);
    }
}

/// One value of a row as the connection delivered it.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Null,
    /// The text protocol's bytes.
    Bytes(&'a [u8]),
    /// A driver value that is not bytes (written as SQL).
    Other(&'a Value),
}

impl<'a> From<Option<&'a Value>> for Cell<'a> {
    fn from(v: Option<&'a Value>) -> Cell<'a> {
        match v {
            None | Some(Value::NULL) => Cell::Null,
            Some(Value::Bytes(b)) => Cell::Bytes(b),
            Some(other) => Cell::Other(other),
        }
    }
}

/// Appends one value.
pub fn push_value<'a>(buf: &mut Vec<u8>, kind: ColKind, v: impl Into<Cell<'a>>) {
    match v.into() {
        Cell::Null => buf.extend_from_slice(b"NULL"),
        Cell::Bytes(b) => match kind {
            ColKind::Bare if !b.is_empty() => buf.extend_from_slice(b),
            ColKind::Bare | ColKind::Quoted => push_quoted(buf, b),
            ColKind::Hex => push_hex(buf, b),
        },
        // The text protocol only sends bytes; anything else is written as SQL.
        Cell::Other(other) => buf.extend_from_slice(other.as_sql(false).as_bytes()),
    }
}

/// Something that holds one row's values by column index.
pub trait RowValues {
    fn value(&self, i: usize) -> Cell<'_>;
}

impl RowValues for Row {
    fn value(&self, i: usize) -> Cell<'_> {
        self.as_ref(i).into()
    }
}

impl RowValues for [Value] {
    fn value(&self, i: usize) -> Cell<'_> {
        self.get(i).into()
    }
}

impl RowValues for super::raw::RawRow<'_> {
    fn value(&self, i: usize) -> Cell<'_> {
        self.get(i).map_or(Cell::Null, Cell::Bytes)
    }
}

/// `INSERT INTO `tbl` (`c1`,`c2`) VALUES\n`.
pub fn insert_prefix(table: &str, columns: &[String]) -> Vec<u8> {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| super::chunking::quote_ident(c))
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES\n",
        super::chunking::quote_ident(table),
        cols.join(",")
    )
    .into_bytes()
}

/// A piece being written: gives the file and the buffer back.
type Inflight = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;

/// A file written through `spawn_blocking`, double-buffered.
struct FileSink {
    file: Option<std::fs::File>,
    spare: Vec<u8>,
    inflight: Option<Inflight>,
    pool: BufPool,
}

fn join_err(e: tokio::task::JoinError) -> std::io::Error {
    std::io::Error::other(format!("file writer task failed: {e}"))
}

impl FileSink {
    async fn create(path: PathBuf, pool: &BufPool) -> std::io::Result<FileSink> {
        let file = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
        })
        .await
        .map_err(join_err)??;
        Ok(FileSink {
            file: Some(file),
            spare: pool.take(),
            inflight: None,
            pool: pool.clone(),
        })
    }

    /// Waits for the piece being written.
    async fn settle(&mut self) -> std::io::Result<()> {
        if let Some(h) = self.inflight.take() {
            let (f, b) = h.await.map_err(join_err)??;
            self.file = Some(f);
            self.spare = b;
        }
        Ok(())
    }

    /// Hands `buf`'s contents to the writer; `buf` comes back empty (with capacity).
    async fn write(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        self.settle().await?;
        let mut f = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("file writer lost its file"))?;
        let mut data = std::mem::take(&mut self.spare);
        data.clear();
        std::mem::swap(buf, &mut data);
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            f.write_all(&data)?;
            Ok((f, data))
        }));
        Ok(())
    }

    /// Writes what is pending and fsyncs.
    async fn finish(mut self) -> std::io::Result<()> {
        self.settle().await?;
        self.pool.put(std::mem::take(&mut self.spare));
        if let Some(f) = self.file.take() {
            tokio::task::spawn_blocking(move || f.sync_all())
                .await
                .map_err(join_err)??;
        }
        Ok(())
    }
}

/// The file being written.
struct OpenFile {
    name: String,
    tmp: PathBuf,
    sink: Option<FileSink>,
    /// Bytes in the file, buffered ones included.
    bytes: u64,
}

/// What a table's chunks share for writing.
#[derive(Debug)]
pub struct TableFormat {
    /// Unescaped names (file names escape them).
    pub db: String,
    pub table: String,
    pub insert_prefix: Vec<u8>,
    pub kinds: Vec<ColKind>,
}

/// A finished (fsynced, not yet renamed) file of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub name: String,
    pub size: u64,
}

/// Writes one chunk's files.
pub struct ChunkWriter {
    dir: PathBuf,
    fmt: Arc<TableFormat>,
    chunk: u32,
    statement_size: u64,
    file_size: u64,
    buf: Vec<u8>,
    cur: Option<OpenFile>,
    next_file: u64,
    done: Vec<(OpenFile, u64)>,
    stmt_len: u64,
    in_stmt: bool,
    /// The current file reached chunk-filesize: the caller flushes before the next row.
    file_full: bool,
    /// Rows written so far.
    pub rows: u64,
    /// Bytes rendered so far (all files).
    pub bytes: u64,
    pool: BufPool,
}

impl ChunkWriter {
    pub fn new(
        dir: &Path,
        fmt: Arc<TableFormat>,
        chunk: u32,
        statement_size: u64,
        file_size: u64,
        pool: &BufPool,
    ) -> ChunkWriter {
        ChunkWriter {
            dir: dir.to_path_buf(),
            fmt,
            chunk,
            statement_size: statement_size.max(1),
            file_size: file_size.max(1),
            buf: pool.take(),
            cur: None,
            next_file: 0,
            done: Vec::new(),
            stmt_len: 0,
            in_stmt: false,
            file_full: false,
            rows: 0,
            bytes: 0,
            pool: pool.clone(),
        }
    }

    /// True when the caller should [`ChunkWriter::flush`] before the next row.
    pub fn wants_flush(&self) -> bool {
        self.file_full || self.buf.len() >= FLUSH_AT
    }

    /// Renders one row.
    pub fn push_row<R: RowValues + ?Sized>(&mut self, row: &R) {
        let before = self.buf.len();
        if self.cur.is_none() {
            let name = naming::data_file(
                &self.fmt.db,
                &self.fmt.table,
                u64::from(self.chunk),
                self.next_file,
            );
            self.next_file += 1;
            self.cur = Some(OpenFile {
                tmp: self.dir.join(format!("{name}.tmp")),
                name,
                sink: None,
                bytes: 0,
            });
            self.buf.extend_from_slice(HEADER);
        }
        let stmt_start = self.buf.len();
        if self.in_stmt {
            self.buf.extend_from_slice(b",\n");
        } else {
            self.buf.extend_from_slice(&self.fmt.insert_prefix);
            self.stmt_len = 0;
            self.in_stmt = true;
        }
        self.buf.push(b'(');
        for (i, kind) in self.fmt.kinds.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            push_value(&mut self.buf, *kind, row.value(i));
        }
        self.buf.push(b')');
        self.stmt_len += (self.buf.len() - stmt_start) as u64;
        self.rows += 1;
        let mut file_bytes = self.file_bytes_with(before);
        if self.stmt_len >= self.statement_size || file_bytes >= self.file_size {
            self.buf.extend_from_slice(b";\n");
            self.in_stmt = false;
            file_bytes += 2;
            if file_bytes >= self.file_size {
                self.file_full = true;
            }
        }
        let added = (self.buf.len() - before) as u64;
        self.bytes += added;
        if let Some(c) = self.cur.as_mut() {
            c.bytes += added;
        }
    }

    /// The current file's size if the buffer from `before` on were added.
    fn file_bytes_with(&self, before: usize) -> u64 {
        self.cur.as_ref().map_or(0, |c| c.bytes) + (self.buf.len() - before) as u64
    }

    /// Writes the buffer to the current file; closes it (fsync) when it is full.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if let Some(cur) = self.cur.as_mut() {
            if cur.sink.is_none() {
                cur.sink = Some(FileSink::create(cur.tmp.clone(), &self.pool).await?);
            }
            if !self.buf.is_empty()
                && let Some(sink) = cur.sink.as_mut()
            {
                sink.write(&mut self.buf).await?;
            }
        }
        if self.file_full {
            self.close_file().await?;
        }
        Ok(())
    }

    async fn close_file(&mut self) -> std::io::Result<()> {
        self.file_full = false;
        if let Some(mut f) = self.cur.take() {
            if let Some(sink) = f.sink.take() {
                sink.finish().await?;
            }
            let size = f.bytes;
            self.done.push((f, size));
        }
        Ok(())
    }

    /// Ends the last statement and file; every file is fsynced (still under its `.tmp` name).
    pub async fn finish(&mut self) -> std::io::Result<()> {
        if self.in_stmt {
            self.buf.extend_from_slice(b";\n");
            self.in_stmt = false;
            self.bytes += 2;
            if let Some(c) = self.cur.as_mut() {
                c.bytes += 2;
            }
        }
        if self.cur.is_some() {
            self.file_full = true;
            self.flush().await?;
        }
        Ok(())
    }

    /// Renames the finished files to their final names and fsyncs the directory.
    pub async fn commit(mut self) -> std::io::Result<Vec<WrittenFile>> {
        self.pool.put(std::mem::take(&mut self.buf));
        let done = std::mem::take(&mut self.done);
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(done.len());
            for (f, size) in done {
                std::fs::rename(&f.tmp, dir.join(&f.name))?;
                out.push(WrittenFile { name: f.name, size });
            }
            if !out.is_empty() {
                std::fs::File::open(&dir)?.sync_all()?;
            }
            Ok(out)
        })
        .await
        .map_err(join_err)?
    }

    /// Removes every file of the chunk (cancel or error).
    pub fn abort(mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
        let cur = self.cur.take();
        for f in self.done.drain(..).map(|(f, _)| f).chain(cur) {
            drop(f.sink);
            let _ = std::fs::remove_file(&f.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_table() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"", b"''"),
            (b"plain", b"'plain'"),
            (b"it's", b"'it\\'s'"),
            (b"a\"b\\c", b"'a\\\"b\\\\c'"),
            (b"\0\n\r\x1a", b"'\\0\\n\\r\\Z'"),
            (b"tab\there", b"'tab\there'"),
            ("ünï".as_bytes(), "'ünï'".as_bytes()),
        ];
        for (v, want) in cases {
            let mut buf = Vec::new();
            push_quoted(&mut buf, v);
            assert_eq!(buf, want, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn values_by_kind() {
        let b = |s: &[u8]| Some(Value::Bytes(s.to_vec()));
        let cases: Vec<(ColKind, Option<Value>, &str)> = vec![
            (ColKind::Bare, b(b"-12"), "-12"),
            (
                ColKind::Bare,
                b(b"1.2345678806304932"),
                "1.2345678806304932",
            ),
            (ColKind::Bare, b(b"1e300"), "1e300"),
            (ColKind::Bare, Some(Value::NULL), "NULL"),
            (ColKind::Bare, None, "NULL"),
            (
                ColKind::Quoted,
                b(b"2026-01-02 03:04:05.000001"),
                "'2026-01-02 03:04:05.000001'",
            ),
            (ColKind::Quoted, b(b"O'Brien"), "'O\\'Brien'"),
            (ColKind::Hex, b(b"\x00\xff\x10"), "0x00FF10"),
            (ColKind::Hex, b(b""), "''"),
            (ColKind::Quoted, Some(Value::Int(-5)), "-5"),
        ];
        for (kind, v, want) in cases {
            let mut buf = Vec::new();
            push_value(&mut buf, kind, v.as_ref());
            assert_eq!(String::from_utf8_lossy(&buf), want, "{kind:?} {v:?}");
        }
    }

    #[test]
    fn column_kinds_table() {
        let cases = [
            ("int", None, ColKind::Bare),
            ("BIGINT", None, ColKind::Bare),
            ("decimal", None, ColKind::Bare),
            ("double", None, ColKind::Bare),
            ("float", None, ColKind::Bare),
            ("varchar", Some("utf8mb4"), ColKind::Quoted),
            ("char", Some("binary"), ColKind::Hex),
            ("varbinary", Some("binary"), ColKind::Hex),
            ("longblob", None, ColKind::Hex),
            ("bit", None, ColKind::Hex),
            ("point", None, ColKind::Hex),
            ("datetime", None, ColKind::Quoted),
            ("enum", Some("latin1"), ColKind::Quoted),
            ("json", None, ColKind::Quoted),
            ("year", None, ColKind::Quoted),
            ("inet6", None, ColKind::Hex),
            ("uuid", None, ColKind::Hex),
        ];
        for (ty, cs, want) in cases {
            assert_eq!(ColKind::of(ty, cs), want, "{ty}");
        }
        assert_eq!(select_expr("f", "FLOAT"), "CAST(`f` AS DOUBLE)");
        assert_eq!(select_expr("a`b", "int"), "`a``b`");
        assert_eq!(select_expr("u", "uuid"), "CAST(`u` AS BINARY(16))");
        assert_eq!(
            insert_prefix("t`1", &["a".into(), "b c".into()]),
            b"INSERT INTO `t``1` (`a`,`b c`) VALUES\n"
        );
    }

    fn row(vals: &[&str]) -> Vec<Value> {
        vals.iter()
            .map(|v| Value::Bytes(v.as_bytes().to_vec()))
            .collect()
    }

    fn fmt() -> Arc<TableFormat> {
        Arc::new(TableFormat {
            db: "d".into(),
            table: "t".into(),
            insert_prefix: insert_prefix("t", &["a".into(), "b".into()]),
            kinds: vec![ColKind::Bare, ColKind::Quoted],
        })
    }

    async fn write_rows(stmt: u64, file: u64, n: usize) -> (tempfile::TempDir, Vec<WrittenFile>) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), fmt(), 2, stmt, file, &render_pool());
        for i in 0..n {
            w.push_row(row(&[&i.to_string(), "x"]).as_slice());
            if w.wants_flush() {
                w.flush().await.unwrap();
            }
        }
        w.finish().await.unwrap();
        let files = w.commit().await.unwrap();
        (dir, files)
    }

    #[tokio::test]
    async fn statements_and_files_split_as_dumpling() {
        // One statement, one file.
        let (dir, files) = write_rows(1_000_000, 1 << 20, 3).await;
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "d.t.0000000020000.sql");
        let text = std::fs::read_to_string(dir.path().join(&files[0].name)).unwrap();
        assert_eq!(
            text,
            "/*!40101 SET NAMES binary*/;\nINSERT INTO `t` (`a`,`b`) VALUES\n(0,'x'),\n(1,'x'),\n(2,'x');\n"
        );
        assert_eq!(files[0].size, text.len() as u64);
        // statement-size 1: one INSERT per row.
        let (dir, files) = write_rows(1, 1 << 20, 2).await;
        let text = std::fs::read_to_string(dir.path().join(&files[0].name)).unwrap();
        assert_eq!(
            text,
            "/*!40101 SET NAMES binary*/;\nINSERT INTO `t` (`a`,`b`) VALUES\n(0,'x');\nINSERT INTO `t` (`a`,`b`) VALUES\n(1,'x');\n"
        );
        // A tiny chunk-filesize: one row per file, each file complete.
        let (dir, files) = write_rows(1_000_000, 10, 3).await;
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "d.t.0000000020000.sql",
                "d.t.0000000020001.sql",
                "d.t.0000000020002.sql"
            ]
        );
        for (i, f) in files.iter().enumerate() {
            let text = std::fs::read_to_string(dir.path().join(&f.name)).unwrap();
            assert_eq!(
                text,
                format!(
                    "/*!40101 SET NAMES binary*/;\nINSERT INTO `t` (`a`,`b`) VALUES\n({i},'x');\n"
                )
            );
            assert_eq!(f.size, text.len() as u64);
        }
        // No rows: no file.
        let (dir, files) = write_rows(1, 1, 0).await;
        assert!(files.is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn big_chunks_flush_in_pieces_and_abort_leaves_nothing() {
        let n = 200_000;
        let (dir, files) = write_rows(1_000_000, 1 << 30, n).await;
        let text = std::fs::read_to_string(dir.path().join(&files[0].name)).unwrap();
        assert_eq!(text.matches("'x')").count(), n);
        assert!(text.ends_with(&format!("({},'x');\n", n - 1)));
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), fmt(), 0, 100, 200, &render_pool());
        for i in 0..50 {
            w.push_row(row(&[&i.to_string(), "y"]).as_slice());
            if w.wants_flush() {
                w.flush().await.unwrap();
            }
        }
        assert!(std::fs::read_dir(dir.path()).unwrap().count() > 1);
        w.abort();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_pool_hands_back_its_buffers_and_keeps_a_bounded_number() {
        let pool = render_pool();
        let mut a = pool.take();
        assert!(a.capacity() >= BUF_CAP);
        a.extend_from_slice(b"rows");
        let ptr = a.as_ptr();
        pool.put(a);
        let b = pool.take();
        assert_eq!(b.as_ptr(), ptr, "the same allocation is reused");
        assert!(b.is_empty(), "a reused buffer comes back empty");
        // Too small (a buffer that lost its capacity) is not kept.
        pool.put(Vec::new());
        assert_eq!(pool.kept(), 0);
        for _ in 0..POOL_MAX + 5 {
            pool.put(Vec::with_capacity(BUF_CAP));
        }
        assert_eq!(pool.kept(), POOL_MAX);
    }
}
