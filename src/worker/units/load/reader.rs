//! Reading a dump file statement by statement, from any statement boundary (the byte offset a
//! loader checkpoint holds), with large reads into one buffer that is reused: a statement is
//! handed out as a slice of that buffer together with the byte offset just past its `;`.
//! The buffer can come from the caller and go back to it ([`StmtReader::open_in`],
//! [`StmtReader::into_buf`]): the load's file tasks pass theirs from file to file, since a fresh
//! multi-MiB buffer per file came back as freshly faulted, zeroed pages. The file is read with
//! plain reads on the blocking pool straight into that buffer (tokio's `File` reads into a
//! buffer of its own first and copies).
//!
//! A file that ends inside a quoted string, a comment or a statement without its `;` is an
//! error naming the offset where that statement starts (DM's 34002).

use std::path::Path;

use std::io::{Read, Seek};

use super::scan::{Ending, Scanner, trim};

/// The first read size (the buffer grows for longer statements).
pub const BUF: usize = 4 << 20;
/// The longest statement accepted (MariaDB's largest `max_allowed_packet`).
const MAX_STMT: usize = 1 << 30;

/// What a statement is, for the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has code: a data statement (the loader checks it is an INSERT).
    Data,
    /// Only comments, one executable (`/*!40101 SET NAMES binary*/`): runs on the session.
    Session,
    /// Only plain comments: nothing to run.
    Comment,
}

/// One statement of a file.
#[derive(Debug)]
pub struct Stmt<'a> {
    /// The statement without its `;` and surrounding whitespace.
    pub text: &'a [u8],
    /// Byte offset of the statement's first byte (after whitespace).
    pub start: u64,
    /// Byte offset just past the `;` — or the file's size when only whitespace follows.
    pub end: u64,
    pub kind: Kind,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file ends inside a statement that starts at `offset`.
    #[error("the file ends inside a statement ({why}) that starts at byte {offset}")]
    BadEnding { offset: u64, why: &'static str },
    #[error("the statement at byte {offset} is longer than {MAX_STMT} bytes")]
    TooLarge { offset: u64 },
}

/// A statement reader over one file.
pub struct StmtReader {
    /// `None` only while a read is on the blocking pool.
    file: Option<std::fs::File>,
    buf: Vec<u8>,
    /// Start of the current statement in `buf`.
    start: usize,
    /// Where the scanner continues in `buf`.
    pos: usize,
    /// Valid bytes in `buf`.
    len: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// The file's size.
    size: u64,
    eof: bool,
    sc: Scanner,
}

impl StmtReader {
    /// Opens `path` at byte `offset` (a statement boundary). `size` is the file's size (the
    /// checkpoint's `end_pos`).
    pub async fn open(path: &Path, offset: u64, size: u64) -> std::io::Result<StmtReader> {
        Self::open_in(path, offset, size, Vec::new()).await
    }

    /// [`open`](Self::open), reading into `buf` (its contents do not matter; it grows to the
    /// first read's size if it is shorter).
    pub async fn open_in(
        path: &Path,
        offset: u64,
        size: u64,
        mut buf: Vec<u8>,
    ) -> std::io::Result<StmtReader> {
        let path = path.to_path_buf();
        let file = blocking(move || {
            let mut file = std::fs::File::open(&path)?;
            if offset > 0 {
                file.seek(std::io::SeekFrom::Start(offset))?;
            }
            Ok(file)
        })
        .await?;
        let want = BUF.min(size.saturating_sub(offset) as usize + 1).max(4096);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        Ok(StmtReader {
            file: Some(file),
            buf,
            start: 0,
            pos: 0,
            len: 0,
            base: offset,
            size,
            eof: false,
            sc: Scanner::default(),
        })
    }

    /// The next statement, or `None` at a clean end of the file.
    pub async fn next(&mut self) -> Result<Option<Stmt<'_>>, ReadError> {
        loop {
            if let Some(e) = self.sc.feed(&self.buf[..self.len], self.pos) {
                let flags = self.sc.take_flags();
                let s = self.start;
                self.start = e;
                self.pos = e;
                let all_read = self.base + self.len as u64 >= self.size;
                let end = if all_read && self.buf[e..self.len].iter().all(u8::is_ascii_whitespace) {
                    self.size.max(self.base + e as u64)
                } else {
                    self.base + e as u64
                };
                let kind = match (flags.code, flags.exec_comment) {
                    (true, _) => Kind::Data,
                    (false, true) => Kind::Session,
                    (false, false) => Kind::Comment,
                };
                let raw = &self.buf[s..e - 1];
                let lead = raw.iter().take_while(|b| b.is_ascii_whitespace()).count();
                return Ok(Some(Stmt {
                    text: trim(raw),
                    start: self.base + (s + lead) as u64,
                    end,
                    kind,
                }));
            }
            self.pos = self.len;
            if self.eof {
                let why = match self.sc.ending() {
                    Ending::Clean => return Ok(None),
                    Ending::InQuote => "in a quoted string",
                    Ending::InComment => "in a comment",
                    Ending::Unterminated => "no `;`",
                };
                let lead = self.buf[self.start..self.len]
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
                return Err(ReadError::BadEnding {
                    offset: self.base + (self.start + lead) as u64,
                    why,
                });
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.len, 0);
                self.len -= self.start;
                self.pos -= self.start;
                self.base += self.start as u64;
                self.start = 0;
            }
            if self.len == self.buf.len() {
                if self.buf.len() >= MAX_STMT {
                    return Err(ReadError::TooLarge { offset: self.base });
                }
                let n = (self.buf.len() * 2).min(MAX_STMT);
                self.buf.resize(n, 0);
            }
            let mut file = self
                .file
                .take()
                .ok_or_else(|| std::io::Error::other("an earlier read of the file failed"))?;
            let mut buf = std::mem::take(&mut self.buf);
            let at = self.len;
            let (file, buf, n) = blocking(move || {
                let n = file.read(&mut buf[at..]);
                Ok((file, buf, n))
            })
            .await?;
            self.file = Some(file);
            self.buf = buf;
            let n = n?;
            if n == 0 {
                self.eof = true;
            } else {
                self.len += n;
            }
        }
    }

    /// The byte offset after everything read so far (the file's end once `next` gave `None`).
    pub fn offset(&self) -> u64 {
        self.base + self.len as u64
    }

    /// The read buffer, for the next file (its contents are stale bytes).
    pub fn into_buf(self) -> Vec<u8> {
        self.buf
    }
}

/// `f` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

/// The executable comments at the head of a file, up to its first data statement and before
/// byte `upto` (`/*!40101 SET NAMES binary*/` and the like): a load resumed in the middle of
/// the file runs them again so the session reads the rest as the dump wrote it.
pub async fn session_prefix(path: &Path, upto: u64, size: u64) -> Result<Vec<Vec<u8>>, ReadError> {
    let mut r = StmtReader::open(path, 0, size).await?;
    let mut out = Vec::new();
    while let Some(s) = r.next().await? {
        if s.end > upto || s.kind == Kind::Data {
            break;
        }
        if s.kind == Kind::Session {
            out.push(s.text.to_vec());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    async fn read_all(path: &Path, from: u64) -> Result<Vec<(String, u64, Kind)>, ReadError> {
        let size = std::fs::metadata(path)?.len();
        let mut r = StmtReader::open(path, from, size).await?;
        let mut v = Vec::new();
        while let Some(s) = r.next().await? {
            v.push((String::from_utf8_lossy(s.text).into_owned(), s.end, s.kind));
        }
        Ok(v)
    }

    #[test]
    fn reads_statements_with_offsets_and_resumes_at_any_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("db.t.000000000.sql");
        let text = "/*!40101 SET NAMES binary*/;\n/* note */;\nINSERT INTO `t` VALUES (1,'a;'),\n(2,'b');\nINSERT INTO `t` VALUES (3,'c');\n\n";
        std::fs::write(&p, text).expect("write");
        rt().block_on(async {
            let all = read_all(&p, 0).await.expect("read");
            let size = text.len() as u64;
            assert_eq!(
                all,
                vec![
                    ("/*!40101 SET NAMES binary*/".to_string(), 28, Kind::Session),
                    ("/* note */".to_string(), 40, Kind::Comment),
                    (
                        "INSERT INTO `t` VALUES (1,'a;'),\n(2,'b')".to_string(),
                        82,
                        Kind::Data
                    ),
                    (
                        "INSERT INTO `t` VALUES (3,'c')".to_string(),
                        size,
                        Kind::Data
                    ),
                ]
            );
            let rest = read_all(&p, 82).await.expect("read");
            assert_eq!(rest.len(), 1);
            assert_eq!(
                rest[0].1, size,
                "only whitespace follows: the end is the file's size"
            );
            assert_eq!(
                session_prefix(&p, 82, size).await.expect("prefix"),
                vec![b"/*!40101 SET NAMES binary*/".to_vec()]
            );
        });
    }

    #[test]
    fn statements_longer_than_the_buffer_are_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big.sql");
        let long = "x".repeat(BUF * 2 + 17);
        let text = format!("INSERT INTO t VALUES ('{long}');\nINSERT INTO t VALUES (2);");
        std::fs::write(&p, &text).expect("write");
        rt().block_on(async {
            let all = read_all(&p, 0).await.expect("read");
            assert_eq!(all.len(), 2);
            assert_eq!(all[0].0.len(), long.len() + 25);
            assert_eq!(all[1].1, text.len() as u64);
        });
    }

    #[test]
    fn a_file_ending_inside_a_statement_names_its_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            (
                "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES ('x",
                26,
                "in a quoted string",
            ),
            (
                "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2)",
                26,
                "no `;`",
            ),
            ("INSERT INTO t VALUES (1);/* x", 25, "in a comment"),
        ];
        for (text, offset, why) in cases {
            let p = dir.path().join("f.sql");
            std::fs::write(&p, text).expect("write");
            let e = rt().block_on(read_all(&p, 0)).unwrap_err();
            match e {
                ReadError::BadEnding { offset: o, why: w } => {
                    assert_eq!((o, w), (offset, why), "{text}")
                }
                other => panic!("{text}: {other}"),
            }
        }
    }
}
