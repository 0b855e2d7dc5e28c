//! Transaction boundaries in a MariaDB binlog: which events end an event group, and so where
//! the sync unit may drain its queues and save a checkpoint.
//!
//! Pure: the caller classifies each event into an [`Ev`] and feeds it to
//! [`TxnTracker::on`]; the tracker answers whether the event ends a transaction and keeps the
//! position after the last complete one ([`TxnTracker::committed`]), which is what a checkpoint
//! may record. The rules:
//! - Only COMMIT, XID, a full ROLLBACK, the XA PREPARE event and a statement of its own (a
//!   DDL after a standalone GTID, or any statement outside a transaction) end a transaction.
//! - `SAVEPOINT`, `ROLLBACK TO [SAVEPOINT]`, `RELEASE SAVEPOINT` and `XA START/END` inside a
//!   transaction do not (ORMs' nested transactions write them in the middle of one).
//! - A table map and its rows events are inside a transaction: `committed` never lands
//!   between them, so a checkpoint never needs a table map it did not read.
//! - Events outside any transaction (rotate, format description, GTID list, binlog
//!   checkpoint) move `committed` forward to their end; heartbeats never do (their position
//!   is the primary's, not the stream's).

use crate::binlog::Position;

/// What the tracker needs to know of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    /// A ROTATE (real or fake) to this position: the file the next events belong to.
    Rotate(Position),
    /// MariaDB GTID event; `standalone` (flag 0x01): a single statement follows, no XID.
    Gtid { standalone: bool },
    /// A QUERY event, classified with [`classify_query`].
    Query(QueryKind),
    /// TABLE_MAP.
    TableMap,
    /// WRITE/UPDATE/DELETE rows.
    Rows,
    /// XID (commit of a transactional event group).
    Xid,
    /// XA_PREPARE_LOG_EVENT: the end of the prepared part of an XA transaction.
    XaPrepare,
    /// A heartbeat from the primary (never moves the position).
    Heartbeat,
    /// Anything else (format description, GTID list, binlog checkpoint, intvar, …).
    Other,
}

/// A QUERY event's statement, as far as transaction boundaries care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Begin,
    Commit,
    /// A full `ROLLBACK` (not `ROLLBACK TO …`).
    Rollback,
    /// `SAVEPOINT`, `ROLLBACK TO`, `RELEASE SAVEPOINT`.
    Savepoint,
    /// `XA START/BEGIN/END`: inside the XA transaction.
    XaInner,
    /// `XA COMMIT` / `XA ROLLBACK` (a group of its own).
    XaEnd,
    /// Any other statement (DDL, or DML in statement format).
    Statement,
}

/// Classifies a QUERY event's text (comments and case ignored).
pub fn classify_query(sql: &str) -> QueryKind {
    let words: Vec<String> = leading_words(sql, 3);
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match w(0) {
        "BEGIN" if w(1).is_empty() || w(1) == "WORK" => QueryKind::Begin,
        "START" if w(1) == "TRANSACTION" => QueryKind::Begin,
        "COMMIT" => QueryKind::Commit,
        "ROLLBACK" if w(1) == "TO" || (w(1) == "WORK" && w(2) == "TO") => QueryKind::Savepoint,
        "ROLLBACK" => QueryKind::Rollback,
        "SAVEPOINT" => QueryKind::Savepoint,
        "RELEASE" if w(1) == "SAVEPOINT" => QueryKind::Savepoint,
        "XA" => match w(1) {
            "START" | "BEGIN" | "END" | "PREPARE" => QueryKind::XaInner,
            _ => QueryKind::XaEnd,
        },
        _ => QueryKind::Statement,
    }
}

/// The first `n` words of a statement, upper-cased, skipping comments.
fn leading_words(sql: &str, n: usize) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < n {
        let c = b[i];
        if c.is_ascii_whitespace() || c == b';' {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = match sql.get(i + 2..).and_then(|r| r.find("*/")) {
                Some(p) => i + 2 + p + 2,
                None => b.len(),
            };
        } else if c == b'#' || (c == b'-' && b.get(i + 1) == Some(&b'-')) {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(sql[s..i].to_ascii_uppercase());
        } else {
            break;
        }
    }
    out
}

/// What an event means for the transaction in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// Inside a transaction, or between transactions without ending one.
    None,
    /// This event ends a transaction (the caller may flush and checkpoint after it).
    End,
}

/// Tracks event groups; see the module doc for the rules.
#[derive(Debug, Clone)]
pub struct TxnTracker {
    in_txn: bool,
    /// After a standalone GTID: the next statement is the whole group.
    standalone: bool,
    file: String,
    committed: Position,
}

impl TxnTracker {
    /// Starts at `start` (a position between transactions).
    pub fn new(start: Position) -> TxnTracker {
        TxnTracker {
            in_txn: false,
            standalone: false,
            file: start.file.clone(),
            committed: start,
        }
    }

    /// The position after the last complete transaction (or event outside one).
    pub fn committed(&self) -> &Position {
        &self.committed
    }

    /// Inside an event group.
    pub fn in_txn(&self) -> bool {
        self.in_txn
    }

    /// After a standalone GTID, before its statement: the next statement is a group of its own.
    pub fn standalone(&self) -> bool {
        self.standalone
    }

    /// The binlog file events currently come from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Re-anchors the tracker (a GTID start resolved to a real position).
    pub fn reset(&mut self, at: Position) {
        *self = TxnTracker::new(at);
    }

    /// Feeds one event that ends at `log_pos` in the current file (0 when unknown).
    pub fn on(&mut self, ev: &Ev, log_pos: u64) -> Boundary {
        match ev {
            Ev::Rotate(p) => {
                self.file = p.file.clone();
                if !self.in_txn {
                    self.committed = p.clone();
                }
                Boundary::None
            }
            Ev::Gtid { standalone } => {
                self.in_txn = true;
                self.standalone = *standalone;
                Boundary::None
            }
            Ev::Query(k) => match k {
                QueryKind::Begin => {
                    self.in_txn = true;
                    self.standalone = false;
                    Boundary::None
                }
                QueryKind::Commit | QueryKind::Rollback | QueryKind::XaEnd => self.end(log_pos),
                QueryKind::Savepoint | QueryKind::XaInner if self.in_txn && !self.standalone => {
                    Boundary::None
                }
                QueryKind::Statement if self.in_txn && !self.standalone => Boundary::None,
                // A statement of its own (after a standalone GTID, or outside a transaction).
                _ => self.end(log_pos),
            },
            Ev::Xid | Ev::XaPrepare => self.end(log_pos),
            Ev::TableMap | Ev::Rows => {
                if !self.in_txn {
                    // Rows without BEGIN (never written by MariaDB, but keep the map and
                    // its rows together): a transaction until the next boundary.
                    self.in_txn = true;
                }
                Boundary::None
            }
            Ev::Heartbeat => Boundary::None,
            Ev::Other => {
                if !self.in_txn && log_pos > 0 && !self.file.is_empty() {
                    self.committed = Position {
                        file: self.file.clone(),
                        pos: log_pos,
                    };
                }
                Boundary::None
            }
        }
    }

    fn end(&mut self, log_pos: u64) -> Boundary {
        self.in_txn = false;
        self.standalone = false;
        if log_pos > 0 && !self.file.is_empty() {
            self.committed = Position {
                file: self.file.clone(),
                pos: log_pos,
            };
        }
        Boundary::End
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

    #[test]
    fn queries_are_classified() {
        use QueryKind::*;
        let cases = [
            ("BEGIN", Begin),
            ("begin work", Begin),
            ("START TRANSACTION", Begin),
            ("COMMIT", Commit),
            ("ROLLBACK", Rollback),
            ("ROLLBACK TO `s1`", Savepoint),
            ("ROLLBACK WORK TO SAVEPOINT s1", Savepoint),
            ("SAVEPOINT `s1`", Savepoint),
            ("/* c */ savepoint s2", Savepoint),
            ("RELEASE SAVEPOINT s1", Savepoint),
            ("XA START X'31',X'',1", XaInner),
            ("XA END X'31',X'',1", XaInner),
            ("XA COMMIT X'31',X'',1", XaEnd),
            ("XA ROLLBACK X'31',X'',1", XaEnd),
            ("ALTER TABLE t ADD c INT", Statement),
            ("# comment\nCREATE TABLE t (a int)", Statement),
            ("BEGIN NOT ATOMIC SELECT 1; END", Statement),
            ("", Statement),
        ];
        for (sql, want) in cases {
            assert_eq!(classify_query(sql), want, "{sql}");
        }
    }

    /// Feeds events (with their end positions) and returns the boundaries and the final
    /// committed position.
    fn run(events: &[(Ev, u64)]) -> (Vec<Boundary>, u64, bool) {
        let mut t = TxnTracker::new(p(4));
        let b = events.iter().map(|(e, pos)| t.on(e, *pos)).collect();
        (b, t.committed().pos, t.in_txn())
    }

    /// (name, events with end positions, boundaries, final committed position, in a transaction).
    type Case = (&'static str, Vec<(Ev, u64)>, Vec<Boundary>, u64, bool);

    #[test]
    fn boundaries_table() {
        use Boundary::{End, None as N};
        use Ev::*;
        let q = |s: &str| Query(classify_query(s));
        let gtid = Gtid { standalone: false };
        let ddl_gtid = Gtid { standalone: true };
        let cases: Vec<Case> = vec![
            (
                "an XID transaction ends at the XID",
                vec![
                    (gtid.clone(), 10),
                    (q("BEGIN"), 20),
                    (TableMap, 30),
                    (Rows, 40),
                    (Xid, 50),
                ],
                vec![N, N, N, N, End],
                50,
                false,
            ),
            (
                "savepoints do not end a transaction",
                vec![
                    (gtid.clone(), 10),
                    (q("BEGIN"), 20),
                    (TableMap, 30),
                    (Rows, 40),
                    (q("SAVEPOINT `s1`"), 50),
                    (TableMap, 60),
                    (Rows, 70),
                    (q("ROLLBACK TO `s1`"), 80),
                    (TableMap, 90),
                    (Rows, 100),
                    (q("RELEASE SAVEPOINT s1"), 105),
                ],
                vec![N, N, N, N, N, N, N, N, N, N, N],
                4,
                true,
            ),
            (
                "a savepoint transaction ends at its XID",
                vec![
                    (gtid.clone(), 10),
                    (q("BEGIN"), 20),
                    (q("SAVEPOINT a"), 30),
                    (Xid, 40),
                ],
                vec![N, N, N, End],
                40,
                false,
            ),
            (
                "a DDL after a standalone GTID ends its group",
                vec![(ddl_gtid.clone(), 10), (q("ALTER TABLE t ADD c INT"), 20)],
                vec![N, End],
                20,
                false,
            ),
            (
                "a statement outside any transaction ends at itself",
                vec![(q("CREATE TABLE t (a INT)"), 30)],
                vec![End],
                30,
                false,
            ),
            (
                "a non-transactional group ends at COMMIT",
                vec![
                    (gtid.clone(), 10),
                    (q("BEGIN"), 20),
                    (TableMap, 30),
                    (Rows, 40),
                    (q("COMMIT"), 50),
                ],
                vec![N, N, N, N, End],
                50,
                false,
            ),
            (
                "a rolled back group ends at ROLLBACK",
                vec![
                    (gtid.clone(), 10),
                    (q("BEGIN"), 20),
                    (Rows, 40),
                    (q("ROLLBACK"), 50),
                ],
                vec![N, N, N, End],
                50,
                false,
            ),
            (
                "XA: start and end inside, the prepare event ends the group, the commit is its own",
                vec![
                    (gtid.clone(), 10),
                    (q("XA START X'1',X'',1"), 20),
                    (TableMap, 30),
                    (Rows, 40),
                    (q("XA END X'1',X'',1"), 50),
                    (XaPrepare, 60),
                    (ddl_gtid.clone(), 70),
                    (q("XA COMMIT X'1',X'',1"), 80),
                ],
                vec![N, N, N, N, N, End, N, End],
                80,
                false,
            ),
            (
                "a table map never leaves committed between it and its rows",
                vec![
                    (gtid.clone(), 10),
                    (q("BEGIN"), 20),
                    (TableMap, 30),
                    (Other, 35),
                ],
                vec![N, N, N, N],
                4,
                true,
            ),
            (
                "events between transactions move committed; heartbeats do not",
                vec![(Other, 120), (Heartbeat, 999), (Other, 150)],
                vec![N, N, N],
                150,
                false,
            ),
            (
                "a statement inside BEGIN…COMMIT does not end it",
                vec![
                    (gtid.clone(), 10),
                    (q("BEGIN"), 20),
                    (q("INSERT INTO t VALUES (1)"), 30),
                    (q("COMMIT"), 40),
                ],
                vec![N, N, N, End],
                40,
                false,
            ),
        ];
        for (name, events, want, committed, in_txn) in cases {
            let (got, c, t) = run(&events);
            assert_eq!(got, want, "{name}: boundaries");
            assert_eq!(c, committed, "{name}: committed");
            assert_eq!(t, in_txn, "{name}: in_txn");
        }
    }

    #[test]
    fn rotate_moves_committed_only_between_transactions() {
        let mut t = TxnTracker::new(p(4));
        let next = Position {
            file: "bin.000002".into(),
            pos: 4,
        };
        t.on(&Ev::Rotate(next.clone()), 0);
        assert_eq!(t.committed(), &next);
        assert_eq!(t.file(), "bin.000002");
        t.on(&Ev::Gtid { standalone: false }, 100);
        t.on(&Ev::Query(QueryKind::Begin), 120);
        let third = Position {
            file: "bin.000003".into(),
            pos: 4,
        };
        t.on(&Ev::Rotate(third), 0);
        assert_eq!(t.committed(), &next, "a rotate inside a transaction");
        assert_eq!(t.file(), "bin.000003");
        t.on(&Ev::Xid, 200);
        assert_eq!(t.committed().file, "bin.000003");
        assert_eq!(t.committed().pos, 200);
    }
}
