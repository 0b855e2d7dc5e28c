//! Table tests of the applier, pure (no database): the SQL text a batch becomes (compaction,
//! safe mode, byte cuts), where causality sends each change, and how a queue cuts transactions.

use super::*;

fn table(pk: &[usize], uks: &[&[usize]]) -> Arc<TargetTable> {
    Arc::new(TargetTable {
        schema: "s".into(),
        table: "t".into(),
        columns: vec!["id".into(), "u".into(), "v".into()],
        pk: pk.to_vec(),
        unique_keys: uks.iter().map(|k| k.to_vec()).collect(),
    })
}

fn row(v: &[i64]) -> Vec<Value> {
    v.iter().map(|&x| Value::Int(x)).collect()
}

fn at(pos: u64) -> Position {
    Position {
        file: "bin.000001".into(),
        pos,
    }
}

fn ins(t: &Arc<TargetTable>, r: Vec<Value>, safe: bool) -> Change {
    Change {
        table: t.clone(),
        change: RowChange::Insert(r),
        safe_mode: safe,
        pos: at(100),
        mark: None,
    }
}

fn upd(t: &Arc<TargetTable>, before: Vec<Value>, after: Vec<Value>, safe: bool) -> Change {
    Change {
        table: t.clone(),
        change: RowChange::Update { before, after },
        safe_mode: safe,
        pos: at(100),
        mark: None,
    }
}

fn del(t: &Arc<TargetTable>, r: Vec<Value>, safe: bool) -> Change {
    Change {
        table: t.clone(),
        change: RowChange::Delete(r),
        safe_mode: safe,
        pos: at(100),
        mark: None,
    }
}

const ROOMY: Limits = Limits {
    bound: 1 << 20,
    max_statement: 1 << 30,
    compact: true,
    multiple_rows: true,
};

fn sql(changes: &[Change], limits: Limits) -> Vec<String> {
    let refs: Vec<&Change> = changes.iter().collect();
    match statements(&refs, limits) {
        Ok(s) => s,
        Err(e) => panic!("statements: {e}"),
    }
}

const UPSERT_TAIL: &str =
    " ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`u`=VALUES(`u`),`v`=VALUES(`v`)";

#[test]
fn compaction_keeps_insert_outside_safe_mode_and_upserts_in_safe_mode() {
    let t = table(&[0], &[]);
    let ins_sql = |rows: &str| format!("INSERT INTO `s`.`t` (`id`,`u`,`v`) VALUES {rows}");
    let ups_sql = |rows: &str| format!("{}{UPSERT_TAIL}", ins_sql(rows));
    let cases: Vec<(&str, Vec<Change>, Vec<String>)> = vec![
        (
            "insert outside safe mode stays a plain insert",
            vec![ins(&t, row(&[1, 2, 3]), false)],
            vec![ins_sql("(1,2,3)")],
        ),
        (
            "insert in safe mode is an upsert",
            vec![ins(&t, row(&[1, 2, 3]), true)],
            vec![ups_sql("(1,2,3)")],
        ),
        (
            "insert then update of the same row is one insert of the final image",
            vec![
                ins(&t, row(&[1, 2, 3]), false),
                upd(&t, row(&[1, 2, 3]), row(&[1, 5, 3]), false),
            ],
            vec![ins_sql("(1,5,3)")],
        ),
        (
            "update outside safe mode stays an update (cannot create a row)",
            vec![upd(&t, row(&[1, 2, 3]), row(&[1, 5, 3]), false)],
            vec!["UPDATE `s`.`t` SET `id`=1,`u`=5,`v`=3 WHERE `id`=1 LIMIT 1".into()],
        ),
        (
            "update in safe mode is an upsert",
            vec![upd(&t, row(&[1, 2, 3]), row(&[1, 5, 3]), true)],
            vec![ups_sql("(1,5,3)")],
        ),
        (
            "two updates of one row are one update from the first before image",
            vec![
                upd(&t, row(&[1, 2, 3]), row(&[1, 5, 3]), false),
                upd(&t, row(&[1, 5, 3]), row(&[1, 6, 3]), false),
            ],
            vec!["UPDATE `s`.`t` SET `id`=1,`u`=6,`v`=3 WHERE `id`=1 LIMIT 1".into()],
        ),
        (
            "update then delete is a delete",
            vec![
                upd(&t, row(&[1, 2, 3]), row(&[1, 5, 3]), false),
                del(&t, row(&[1, 5, 3]), false),
            ],
            vec!["DELETE FROM `s`.`t` WHERE (`id`) IN ((1))".into()],
        ),
        (
            "insert then delete is a delete",
            vec![
                ins(&t, row(&[1, 2, 3]), false),
                del(&t, row(&[1, 2, 3]), false),
            ],
            vec!["DELETE FROM `s`.`t` WHERE (`id`) IN ((1))".into()],
        ),
        (
            "delete then insert of the same key is an upsert (DM: replace)",
            vec![
                del(&t, row(&[1, 2, 3]), false),
                ins(&t, row(&[1, 7, 7]), false),
            ],
            vec![ups_sql("(1,7,7)")],
        ),
        (
            "a primary key change outside safe mode is a delete and a plain insert",
            vec![upd(&t, row(&[1, 2, 3]), row(&[9, 2, 3]), false)],
            vec![
                "DELETE FROM `s`.`t` WHERE (`id`) IN ((1))".into(),
                ins_sql("(9,2,3)"),
            ],
        ),
        (
            "a primary key change in safe mode is a delete and an upsert",
            vec![upd(&t, row(&[1, 2, 3]), row(&[9, 2, 3]), true)],
            vec![
                "DELETE FROM `s`.`t` WHERE (`id`) IN ((1))".into(),
                ups_sql("(9,2,3)"),
            ],
        ),
        (
            "deletes go first; inserts of several rows share one statement",
            vec![
                ins(&t, row(&[1, 1, 1]), false),
                del(&t, row(&[5, 5, 5]), false),
                ins(&t, row(&[2, 2, 2]), false),
                del(&t, row(&[6, 6, 6]), false),
            ],
            vec![
                "DELETE FROM `s`.`t` WHERE (`id`) IN ((5),(6))".into(),
                ins_sql("(1,1,1),(2,2,2)"),
            ],
        ),
        (
            "a batch mixing safe and non-safe changes keeps each change's mode",
            vec![
                ins(&t, row(&[1, 1, 1]), true),
                ins(&t, row(&[2, 2, 2]), false),
                upd(&t, row(&[3, 3, 3]), row(&[3, 4, 4]), true),
                upd(&t, row(&[4, 3, 3]), row(&[4, 4, 4]), false),
            ],
            vec![
                ups_sql("(1,1,1)"),
                ins_sql("(2,2,2)"),
                ups_sql("(3,4,4)"),
                "UPDATE `s`.`t` SET `id`=4,`u`=4,`v`=4 WHERE `id`=4 LIMIT 1".into(),
            ],
        ),
        (
            "a safe insert then a non-safe update keeps the insert's safe mode (DM)",
            vec![
                ins(&t, row(&[1, 1, 1]), true),
                upd(&t, row(&[1, 1, 1]), row(&[1, 2, 2]), false),
            ],
            vec![ups_sql("(1,2,2)")],
        ),
    ];
    for (name, changes, want) in cases {
        assert_eq!(sql(&changes, ROOMY), want, "{name}");
    }
}

#[test]
fn partial_images_and_tables_without_a_primary_key_are_never_compacted() {
    let keyed = table(&[0], &[]);
    let keyless = table(&[], &[]);
    let uk_only = table(&[], &[&[1]]);
    let m = Value::Missing;
    let cases: Vec<(&str, Vec<Change>, Vec<&str>)> = vec![
        (
            "MINIMAL images: statements one by one",
            vec![
                ins(&keyed, row(&[1, 2, 3]), false),
                upd(
                    &keyed,
                    vec![Value::Int(1), m.clone(), m.clone()],
                    vec![m.clone(), Value::Int(5), m.clone()],
                    false,
                ),
            ],
            vec![
                "INSERT INTO `s`.`t` (`id`,`u`,`v`) VALUES (1,2,3)",
                "UPDATE `s`.`t` SET `u`=5 WHERE `id`=1 LIMIT 1",
            ],
        ),
        (
            "no key: insert then update is two statements, matched on every column",
            vec![
                ins(&keyless, row(&[1, 2, 3]), false),
                upd(&keyless, row(&[1, 2, 3]), row(&[1, 5, 3]), false),
                del(&keyless, row(&[1, 5, 3]), false),
            ],
            vec![
                "INSERT INTO `s`.`t` (`id`,`u`,`v`) VALUES (1,2,3)",
                "UPDATE `s`.`t` SET `id`=1,`u`=5,`v`=3 WHERE `id`<=>1 AND `u`<=>2 AND `v`<=>3 LIMIT 1",
                "DELETE FROM `s`.`t` WHERE `id`<=>1 AND `u`<=>5 AND `v`<=>3 LIMIT 1",
            ],
        ),
        (
            "no key, safe mode: an update is never an upsert",
            vec![upd(&keyless, row(&[1, 2, 3]), row(&[1, 5, 3]), true)],
            vec![
                "DELETE FROM `s`.`t` WHERE `id`<=>1 AND `u`<=>2 AND `v`<=>3 LIMIT 1",
                "REPLACE INTO `s`.`t` (`id`,`u`,`v`) VALUES (1,5,3)",
            ],
        ),
        (
            "unique key only: consecutive inserts of one mode merge, modes stay apart",
            vec![
                ins(&uk_only, row(&[1, 1, 1]), false),
                ins(&uk_only, row(&[2, 2, 2]), false),
                ins(&uk_only, row(&[3, 3, 3]), true),
            ],
            vec![
                "INSERT INTO `s`.`t` (`id`,`u`,`v`) VALUES (1,1,1),(2,2,2)",
                "REPLACE INTO `s`.`t` (`id`,`u`,`v`) VALUES (3,3,3)",
            ],
        ),
    ];
    for (name, changes, want) in cases {
        assert_eq!(sql(&changes, ROOMY), want, "{name}");
    }
}

#[test]
fn a_row_is_keyed_only_when_every_image_has_a_usable_key() {
    let pk = table(&[0], &[]);
    let nullable_uk = table(&[], &[&[1]]);
    let none = table(&[], &[]);
    let null_uk = vec![Value::Int(1), Value::Null, Value::Int(3)];
    let cases: Vec<(&str, Change, bool)> = vec![
        ("primary key", ins(&pk, row(&[1, 2, 3]), false), true),
        (
            "unique key without NULL",
            ins(&nullable_uk, row(&[1, 2, 3]), false),
            true,
        ),
        (
            "unique key with a NULL",
            ins(&nullable_uk, null_uk.clone(), false),
            false,
        ),
        (
            "update to a NULL unique key",
            upd(&nullable_uk, row(&[1, 2, 3]), null_uk.clone(), false),
            false,
        ),
        (
            "update from a NULL unique key",
            upd(&nullable_uk, null_uk, row(&[1, 2, 3]), false),
            false,
        ),
        ("no key at all", ins(&none, row(&[1, 2, 3]), false), false),
    ];
    for (name, c, want) in cases {
        assert_eq!(keyed(&c), want, "{name}");
    }
}

#[test]
fn causality_keeps_a_group_on_one_queue_and_drains_on_conflict() {
    let t = table(&[0], &[&[1]]);
    let mut c = Causality::new(16);
    let a = c.place_keyed(&ins(&t, row(&[1, 10, 0]), false));
    assert!(!a.drain_first, "first change");
    // Same PK: same group, same queue.
    let b = c.place_keyed(&upd(&t, row(&[1, 10, 0]), row(&[1, 11, 0]), false));
    assert_eq!(b, a, "same row");
    // Its new unique value joined the group: a row taking the old value follows too.
    let u = c.place_keyed(&ins(&t, row(&[2, 11, 0]), false));
    assert_eq!(u.queue, a.queue, "unique value of the group");
    assert!(!u.drain_first);
    // Another row starts its own group.
    let other = c.place_keyed(&ins(&t, row(&[3, 30, 0]), false));
    assert!(!other.drain_first);
    // A change touching two groups: drain first, then it starts afresh.
    let conflict = c.place_keyed(&upd(&t, row(&[3, 30, 0]), row(&[3, 10, 0]), false));
    assert!(conflict.drain_first, "keys of two groups");
    let after = c.place_keyed(&ins(&t, row(&[4, 40, 0]), false));
    assert!(!after.drain_first, "the map started afresh");
}

#[test]
fn keyless_events_go_whole_to_the_table_queue_and_are_skipped_when_applied() {
    let none = table(&[], &[]);
    let nullable_uk = table(&[], &[&[1]]);
    let n = 8;
    let name = table_name(&none);
    let mut c = Causality::new(n);
    let table_q = c.queue_of(&name);
    let event = vec![
        ins(&none, row(&[1, 2, 3]), false),
        ins(&none, row(&[4, 5, 6]), false),
    ];
    let p = c.place_keyless(&event, &vec![Applied::default(); n]);
    assert_eq!(
        p,
        Some(Placement {
            queue: table_q,
            drain_first: false
        })
    );
    // Committed by that queue before a crash (same position or later): skipped.
    let mut applied = vec![Applied::default(); n];
    applied[table_q].pos = Some(at(100));
    assert_eq!(c.place_keyless(&event, &applied), None, "at the position");
    applied[table_q].pos = Some(at(99));
    assert!(c.place_keyless(&event, &applied).is_some(), "before it");
    // Another queue's point says nothing about this table's events.
    let mut other = vec![Applied::default(); n];
    other[(table_q + 1) % n].pos = Some(at(1000));
    assert!(c.place_keyless(&event, &other).is_some(), "another queue");

    // A NULL unique key makes the whole event keyless; its keyed row's key joins the table's
    // group, so a later change of that row follows it to the same queue without a drain.
    let mut c = Causality::new(n);
    let event = vec![
        ins(
            &nullable_uk,
            vec![Value::Int(1), Value::Null, Value::Int(3)],
            false,
        ),
        ins(&nullable_uk, row(&[2, 20, 3]), false),
    ];
    assert!(!event.iter().all(keyed));
    let p = c.place_keyless(&event, &vec![Applied::default(); n]);
    assert_eq!(p.map(|p| p.queue), Some(c.queue_of(&name)));
    let next = c.place_keyed(&upd(
        &nullable_uk,
        row(&[2, 20, 3]),
        row(&[2, 21, 3]),
        false,
    ));
    assert_eq!(
        next,
        Placement {
            queue: c.queue_of(&name),
            drain_first: false
        }
    );
    // A keyed change already in another group conflicts with the table's group: drain.
    let mut c = Causality::new(n);
    c.place_keyed(&ins(&nullable_uk, row(&[7, 70, 0]), false));
    let event = vec![upd(
        &nullable_uk,
        row(&[7, 70, 0]),
        vec![Value::Int(7), Value::Null, Value::Int(0)],
        false,
    )];
    let p = c.place_keyless(&event, &vec![Applied::default(); n]);
    assert_eq!(p.map(|p| p.drain_first), Some(true));
}

#[test]
fn causality_drains_and_clears_when_the_map_is_full() {
    let t = table(&[0], &[]);
    let mut c = Causality::new(4);
    for i in 0..MAX_CAUSALITY_KEYS as i64 {
        assert!(!c.place_keyed(&ins(&t, row(&[i, 0, 0]), false)).drain_first);
    }
    let p = c.place_keyed(&ins(&t, row(&[-1, 0, 0]), false));
    assert!(p.drain_first, "the map reached its bound");
    assert_eq!(c.groups.len(), 1, "cleared, then the new key");
}

fn blob(id: i64, len: usize) -> Vec<Value> {
    vec![Value::Int(id), Value::Bytes(vec![b'x'; len]), Value::Null]
}

#[test]
fn multi_row_statements_are_cut_by_bytes_and_a_big_row_stands_alone() {
    let t = table(&[0], &[]);
    // Each row is about 2 × 100 bytes of hex.
    let small = Limits {
        bound: 500,
        max_statement: 1 << 20,
        compact: true,
        multiple_rows: true,
    };
    let changes: Vec<Change> = (1..=5).map(|i| ins(&t, blob(i, 100), false)).collect();
    let stmts = sql(&changes, small);
    assert_eq!(stmts.len(), 3, "two rows fit in 500 bytes: {stmts:?}");
    assert!(stmts.iter().all(|s| s.len() <= 500));
    let rows: usize = stmts.iter().map(|s| s.matches("),(").count() + 1).sum();
    assert_eq!(rows, 5);

    // A row larger than the bound gets a statement of its own, between the others.
    let changes = vec![
        ins(&t, blob(1, 10), false),
        ins(&t, blob(2, 1000), false),
        ins(&t, blob(3, 10), false),
    ];
    let stmts = sql(&changes, small);
    assert_eq!(stmts.len(), 3, "{stmts:?}");
    assert!(stmts[1].len() > 2000 && stmts[1].starts_with("INSERT INTO"));

    // DELETE … IN is cut the same way.
    let changes: Vec<Change> = (1..=5)
        .map(|i| {
            del(
                &t,
                vec![Value::Bytes(vec![b'k'; 100]), Value::Int(i), Value::Null],
                false,
            )
        })
        .collect();
    let tk = table(&[1, 0], &[]);
    let changes: Vec<Change> = changes
        .into_iter()
        .map(|mut c| {
            c.table = tk.clone();
            c
        })
        .collect();
    let stmts = sql(&changes, small);
    assert!(stmts.len() > 1, "{stmts:?}");
    assert!(
        stmts
            .iter()
            .all(|s| s.starts_with("DELETE FROM") && s.len() <= 500)
    );
}

#[test]
fn a_statement_over_max_allowed_packet_is_a_clear_error_naming_the_table() {
    let t = table(&[0], &[]);
    let tight = Limits {
        bound: 100,
        max_statement: 1000,
        compact: true,
        multiple_rows: true,
    };
    let refs = [&ins(&t, blob(1, 600), false)];
    let err = match statements(&refs, tight) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e,
    };
    assert_eq!(err.table, "`s`.`t`");
    assert_eq!(err.max, 1000);
    let err = UnitError::from(err);
    assert_eq!(err.code, code::DB_EXECUTE);
    assert!(!err.retryable);
    assert!(err.message.contains("`s`.`t`"), "{}", err.message);
    assert!(
        err.message.contains("max_allowed_packet"),
        "{}",
        err.message
    );
    assert!(err.workaround.contains("max_allowed_packet"));
}

#[test]
fn transactions_go_in_packets_within_the_bound_and_a_big_statement_alone() {
    let x = |n: usize| "x".repeat(n);
    let cases: Vec<(&str, Vec<String>, Vec<String>)> = vec![
        (
            "all in one",
            vec![x(10), x(10)],
            vec![format!("BEGIN;\n{};\n{};\nCK;\nCOMMIT", x(10), x(10))],
        ),
        (
            "cut at the bound",
            vec![x(40), x(40), x(40)],
            vec![
                format!("BEGIN;\n{};\n{}", x(40), x(40)),
                format!("{};\nCK;\nCOMMIT", x(40)),
            ],
        ),
        (
            "a statement over the bound alone",
            vec![x(10), x(500), x(10)],
            vec![
                format!("BEGIN;\n{}", x(10)),
                x(500),
                format!("{};\nCK;\nCOMMIT", x(10)),
            ],
        ),
    ];
    for (name, stmts, want) in cases {
        assert_eq!(packets(&stmts, "CK;\nCOMMIT", 100), want, "{name}");
    }
}

fn unit(t: &Arc<TargetTable>, rows: usize, len: usize) -> Unit {
    Unit::new(
        (0..rows)
            .map(|i| ins(t, blob(i as i64, len), false))
            .collect(),
    )
}

#[test]
fn a_queue_cuts_transactions_by_bytes_but_never_splits_an_event_group() {
    let t = table(&[], &[]);
    let one = unit(&t, 1, 100).bytes;
    let bound = 3 * one + one / 2;
    // Three units fit, the fourth starts the next transaction.
    let mut g = Gathered::default();
    let mut carried = 0;
    for _ in 0..4 {
        if g.take(Job::Unit(unit(&t, 1, 100)), bound).is_some() {
            carried += 1;
        }
    }
    assert_eq!(
        (g.units.len(), carried),
        (3, 1),
        "the fourth is carried over"
    );

    // A unit larger than the bound alone, when the transaction is empty.
    let mut g = Gathered::default();
    assert!(g.take(Job::Unit(unit(&t, 1, 5000)), bound).is_none());
    assert!(!g.open(100, bound));

    // A keyless event group of many rows stays whole, even over the bound.
    let mut g = Gathered::default();
    assert!(g.take(Job::Unit(unit(&t, 20, 100)), bound).is_none());
    assert_eq!(g.changes, 20);
    // …and its statements are cut by bytes within the one transaction.
    let changes: Vec<&Change> = g.units.iter().flat_map(|u| &u.changes).collect();
    let stmts = match statements(
        &changes,
        Limits {
            bound,
            max_statement: 1 << 20,
            compact: true,
            multiple_rows: true,
        },
    ) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert!(stmts.len() > 1 && stmts.iter().all(|s| s.len() <= bound));

    // By count too.
    let mut g = Gathered::default();
    for _ in 0..3 {
        g.take(Job::Unit(unit(&t, 1, 1)), bound);
    }
    assert!(!g.open(3, bound), "batch of 3 reached");
}

#[test]
fn the_byte_bound_is_at_most_half_of_max_allowed_packet() {
    let mib = 1 << 20;
    let cases: Vec<(usize, usize, Limits)> = vec![
        (
            0,
            16 * mib,
            Limits {
                bound: 4 * mib,
                max_statement: 16 * mib - PACKET_MARGIN,
                compact: true,
                multiple_rows: true,
            },
        ),
        (
            64 * mib,
            16 * mib,
            Limits {
                bound: 8 * mib,
                max_statement: 16 * mib - PACKET_MARGIN,
                compact: true,
                multiple_rows: true,
            },
        ),
        (
            100_000,
            mib,
            Limits {
                bound: 100_000,
                max_statement: mib - PACKET_MARGIN,
                compact: true,
                multiple_rows: true,
            },
        ),
        (
            0,
            0,
            Limits {
                bound: 4 * mib,
                max_statement: 16 * mib - PACKET_MARGIN,
                compact: true,
                multiple_rows: true,
            },
        ),
    ];
    for (wanted, packet, want) in cases {
        assert_eq!(Limits::new(wanted, packet), want, "{wanted} {packet}");
    }
}

#[test]
fn a_refused_transaction_is_dms_10006_with_the_statement_and_a_workaround() {
    let server = |code: u16, message: &str| {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: message.into(),
            state: "23000".into(),
        })
    };
    let packet = "BEGIN;\nINSERT INTO `s`.`t` (`id`) VALUES (7);\nCK;\nCOMMIT";
    let cases: Vec<(mysql_async::Error, bool, &str)> = vec![
        (
            server(1062, "Duplicate entry '7' for key 'PRIMARY'"),
            false,
            "safe-mode",
        ),
        (server(1054, "Unknown column 'x'"), false, "resume-task"),
        (server(1213, "Deadlock found"), true, "retries"),
    ];
    for (e, retryable, hint) in cases {
        let err = execute_error(packet, &e, 1);
        assert_eq!(err.code, code::DB_EXECUTE, "{err}");
        assert_eq!(err.retryable, retryable, "{err}");
        assert!(err.workaround.contains(hint), "{err}");
        assert!(
            err.message
                .ends_with("INSERT INTO `s`.`t` (`id`) VALUES (7)"),
            "{err}"
        );
    }
    let dup = execute_error(
        packet,
        &server(1062, "Duplicate entry '7' for key 'PRIMARY'"),
        1,
    );
    assert!(dup.raw_cause.contains("1062"), "{dup}");
}

/// After a failover followed by GTID, positions name nothing on the new server: a queue's
/// marks alone say which keyless events it committed (same domain, sequence, ordinal).
#[test]
fn keyless_events_are_skipped_by_their_mark_when_the_queue_committed_it() {
    use crate::binlog::MariaGtid;
    use crate::worker::units::sync::marks::{Mark, Marks};
    let none = table(&[], &[]);
    let n = 4;
    let mut c = Causality::new(n);
    let q = c.queue_of(&table_name(&none));
    let event = |seq: u64, ord: u32| {
        let mut e = ins(&none, row(&[1, 2, 3]), false);
        // On the new server the event sits at another offset, past the old queue point.
        e.pos = at(5000);
        e.mark = Some(Mark::new(
            MariaGtid {
                domain: 0,
                server: 2,
                seq,
            },
            ord,
        ));
        vec![e]
    };
    let mut applied = vec![Applied::default(); n];
    applied[q].marks = Marks::parse("0-1-7#2");
    let cases = [
        (6, 9, true),
        (7, 1, true),
        (7, 2, true),
        (7, 3, false),
        (8, 1, false),
    ];
    for (seq, ord, skipped) in cases {
        assert_eq!(
            c.place_keyless(&event(seq, ord), &applied).is_none(),
            skipped,
            "0-2-{seq}#{ord}"
        );
    }
    // An event without a mark (no GTID upstream) is decided by position only.
    let mut plain = event(7, 1);
    plain[0].mark = None;
    assert!(c.place_keyless(&plain, &applied).is_some());
}

#[test]
fn compact_and_multiple_rows_turn_merging_on_and_off() {
    let t = table(&[0], &[]);
    let batch = || {
        vec![
            ins(&t, row(&[1, 1, 1]), false),
            ins(&t, row(&[2, 2, 2]), false),
            upd(&t, row(&[1, 1, 1]), row(&[1, 5, 1]), false),
            del(&t, row(&[3, 3, 3]), false),
            del(&t, row(&[4, 4, 4]), false),
        ]
    };
    let head = "INSERT INTO `s`.`t` (`id`,`u`,`v`) VALUES ";
    let shaped = |compact, multiple_rows| Limits {
        compact,
        multiple_rows,
        ..ROOMY
    };
    // (compact, multiple-rows, statements)
    let cases: Vec<(bool, bool, Vec<String>)> = vec![
        (
            false,
            false,
            vec![
                format!("{head}(1,1,1)"),
                format!("{head}(2,2,2)"),
                "UPDATE `s`.`t` SET `id`=1,`u`=5,`v`=1 WHERE `id`=1 LIMIT 1".into(),
                "DELETE FROM `s`.`t` WHERE `id`=3 LIMIT 1".into(),
                "DELETE FROM `s`.`t` WHERE `id`=4 LIMIT 1".into(),
            ],
        ),
        (
            false,
            true,
            vec![
                format!("{head}(1,1,1),(2,2,2)"),
                "UPDATE `s`.`t` SET `id`=1,`u`=5,`v`=1 WHERE `id`=1 LIMIT 1".into(),
                "DELETE FROM `s`.`t` WHERE (`id`) IN ((3),(4))".into(),
            ],
        ),
        (
            true,
            false,
            vec![
                "DELETE FROM `s`.`t` WHERE (`id`) IN ((3))".into(),
                "DELETE FROM `s`.`t` WHERE (`id`) IN ((4))".into(),
                format!("{head}(2,2,2)"),
                format!("{head}(1,5,1)"),
            ],
        ),
        (
            true,
            true,
            vec![
                "DELETE FROM `s`.`t` WHERE (`id`) IN ((3),(4))".into(),
                format!("{head}(2,2,2),(1,5,1)"),
            ],
        ),
    ];
    for (compact, multiple_rows, want) in cases {
        assert_eq!(
            sql(&batch(), shaped(compact, multiple_rows)),
            want,
            "compact {compact}, multiple-rows {multiple_rows}"
        );
    }
}
