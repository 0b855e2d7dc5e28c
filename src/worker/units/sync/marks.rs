//! GTID marks: where a binlog event is in GTID terms, comparable across servers.
//!
//! Positions (file, offset) name an event on one server only; after an upstream failover the
//! same transaction sits at another offset (or in another file) on the new primary. The sync
//! unit therefore keeps, beside each crash-recovery point that can lie past the global
//! checkpoint, the event's *mark*: its event group's GTID (`domain-server-seq`) and the
//! ordinal of the rows event in that group (`#ord`, 1-based; 0 for a statement such as a
//! DDL). Within one replication domain, marks order events the same way on every server that
//! holds them (MariaDB writes a domain's groups in sequence order; a replica re-logs the
//! same rows events), so a mark written while reading the old primary still says which
//! events were applied when the task resumes, by GTID, on the new one.
//!
//! - Each apply queue records the furthest mark it committed per domain ([`Marks`], in its
//!   checkpoint row's `binlog_gtid`), so keyless events are skipped exactly after a failover.
//! - The DDL-in-flight marker records the DDL's mark, so a replayed DDL is recognised there.
//!
//! Text form: `0-1-7#3` for one mark; a set is comma-separated, one per domain.

use std::collections::BTreeMap;
use std::fmt;

use crate::binlog::MariaGtid;

/// One event's place: its group's GTID and its ordinal among the group's rows events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub gtid: MariaGtid,
    pub ord: u32,
}

impl Mark {
    pub fn new(gtid: MariaGtid, ord: u32) -> Mark {
        Mark { gtid, ord }
    }

    fn key(&self) -> (u64, u32) {
        (self.gtid.seq, self.ord)
    }

    /// `0-1-7#3`; None for anything else.
    pub fn parse(s: &str) -> Option<Mark> {
        let (g, ord) = s.trim().split_once('#')?;
        let mut it = g.split('-');
        let domain = it.next()?.parse().ok()?;
        let server = it.next()?.parse().ok()?;
        let seq = it.next()?.parse().ok()?;
        if it.next().is_some() {
            return None;
        }
        Some(Mark {
            gtid: MariaGtid {
                domain,
                server,
                seq,
            },
            ord: ord.parse().ok()?,
        })
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.gtid, self.ord)
    }
}

/// Per replication domain, the furthest mark reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks(BTreeMap<u32, Mark>);

impl Marks {
    /// The text form; parts that do not read as a mark are left out (a row written before
    /// marks existed holds an empty string).
    pub fn parse(s: &str) -> Marks {
        let mut m = Marks::default();
        for part in s.split(',') {
            if let Some(mark) = Mark::parse(part) {
                m.advance(mark);
            }
        }
        m
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps `m` when it is past this set's mark of its domain.
    pub fn advance(&mut self, m: Mark) {
        match self.0.get(&m.gtid.domain) {
            Some(have) if have.key() >= m.key() => {}
            _ => {
                self.0.insert(m.gtid.domain, m);
            }
        }
    }

    /// Whether `m` is at or before this set's mark of its domain (a domain the set does not
    /// hold covers nothing).
    pub fn covers(&self, m: &Mark) -> bool {
        self.0
            .get(&m.gtid.domain)
            .is_some_and(|have| m.key() <= have.key())
    }
}

impl fmt::Display for Marks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// Whether a GTID set (per domain, the last GTID) holds `m`'s event group.
pub fn gtid_set_holds(set: &BTreeMap<u32, MariaGtid>, m: &Mark) -> bool {
    set.get(&m.gtid.domain).is_some_and(|g| m.gtid.seq <= g.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(domain: u32, server: u32, seq: u64) -> MariaGtid {
        MariaGtid {
            domain,
            server,
            seq,
        }
    }

    #[test]
    fn marks_read_and_write_their_text() {
        let cases = [
            ("0-1-7#3", Some("0-1-7#3")),
            (" 2-10-100#0 ", Some("2-10-100#0")),
            ("0-1-7", None),
            ("0-1#3", None),
            ("0-1-7-8#3", None),
            ("a-1-7#3", None),
            ("0-1-7#x", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                Mark::parse(text).map(|m| m.to_string()).as_deref(),
                want,
                "{text:?}"
            );
        }
        let set = Marks::parse("0-1-7#3,1-2-5#1,junk,");
        assert_eq!(set.to_string(), "0-1-7#3,1-2-5#1");
        assert!(Marks::parse("").is_empty());
        assert_eq!(Marks::parse("0-1-7#3,0-2-9#1").to_string(), "0-2-9#1");
    }

    #[test]
    fn a_set_keeps_the_furthest_mark_per_domain() {
        let mut set = Marks::default();
        set.advance(Mark::new(g(0, 1, 7), 3));
        set.advance(Mark::new(g(0, 1, 7), 2));
        set.advance(Mark::new(g(0, 1, 6), 9));
        assert_eq!(set.to_string(), "0-1-7#3");
        set.advance(Mark::new(g(0, 2, 8), 1));
        set.advance(Mark::new(g(3, 2, 1), 1));
        assert_eq!(set.to_string(), "0-2-8#1,3-2-1#1");
    }

    #[test]
    fn coverage_is_by_domain_then_sequence_then_ordinal() {
        let set = Marks::parse("0-1-7#3");
        let cases = [
            (g(0, 1, 7), 3, true),
            (g(0, 1, 7), 2, true),
            (g(0, 1, 7), 4, false),
            (g(0, 1, 6), 99, true),
            (g(0, 1, 8), 1, false),
            // The server id does not matter: the new primary re-logs the old one's groups.
            (g(0, 2, 7), 1, true),
            // Another domain is not covered.
            (g(1, 1, 1), 1, false),
        ];
        for (gtid, ord, want) in cases {
            assert_eq!(set.covers(&Mark::new(gtid, ord)), want, "{gtid}#{ord}");
        }
    }

    #[test]
    fn a_gtid_set_holds_the_groups_up_to_its_last() {
        let set: BTreeMap<u32, MariaGtid> = [(0, g(0, 1, 7))].into_iter().collect();
        assert!(gtid_set_holds(&set, &Mark::new(g(0, 1, 7), 0)));
        assert!(gtid_set_holds(&set, &Mark::new(g(0, 9, 3), 4)));
        assert!(!gtid_set_holds(&set, &Mark::new(g(0, 1, 8), 0)));
        assert!(!gtid_set_holds(&set, &Mark::new(g(1, 1, 1), 0)));
    }
}
