//! Cutting a table into chunks, as dumpling does with `rows` set: a table with an integer
//! primary or unique key is split into key ranges of about `rows` rows each; any other table is
//! one chunk (split into files only by chunk-filesize).
//!
//! The key: a single-column integer primary key, else a single-column integer unique key (the
//! first by name), else the integer first column of a composite primary key (ranges on it still
//! partition the rows and scan the clustered index in order). The ranges: with an estimated
//! `count` rows (information_schema's `TABLE_ROWS`, `EXPLAIN` with a `where`; when that says less
//! than one chunk but the table has two chunks' rows — statistics lag a bulk insert — the key's
//! width `max − min + 1`) and the key's `MIN`/`MAX` in the snapshot, `n = count / rows` pieces of
//! `step = (max − min) / n + 1`; cut points `min + step, min + 2·step, … ≤ max`, the first
//! range cut again at 1/8, 1/4 and 1/2 of a step (the ramp, see [`cut_points`]). The first
//! chunk is open below and also takes `key IS NULL`, the last is open above, so the chunks
//! cover every row whatever the key values of a later snapshot (a resumed dump reuses the plan).
//!
//! Pure: the plan math and the SQL conditions, no I/O.

use crate::worker::units::full::ChunkPlan;

/// At most this many chunks per table (an estimate far above the real row count must not make
/// millions of tiny chunks).
pub const MAX_CHUNKS: u64 = 100_000;

/// Integer column types a key range can be cut on (information_schema `DATA_TYPE`).
pub fn is_integer_type(data_type: &str) -> bool {
    matches!(
        data_type.to_ascii_lowercase().as_str(),
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
    )
}

/// One row of information_schema.STATISTICS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexColumn {
    pub index: String,
    pub non_unique: bool,
    /// 1-based position of the column in the index.
    pub seq: u32,
    pub column: String,
}

/// The column to cut ranges on (see the module doc), or `None`.
pub fn pick_key(indexes: &[IndexColumn], is_int: impl Fn(&str) -> bool) -> Option<String> {
    let cols_of = |name: &str| -> Vec<&IndexColumn> {
        let mut v: Vec<&IndexColumn> = indexes.iter().filter(|c| c.index == name).collect();
        v.sort_by_key(|c| c.seq);
        v
    };
    let single_int = |name: &str| -> Option<String> {
        let cols = cols_of(name);
        match cols.as_slice() {
            [c] if is_int(&c.column) => Some(c.column.clone()),
            _ => None,
        }
    };
    if let Some(k) = single_int("PRIMARY") {
        return Some(k);
    }
    let mut unique: Vec<&str> = indexes
        .iter()
        .filter(|c| !c.non_unique && c.index != "PRIMARY")
        .map(|c| c.index.as_str())
        .collect();
    unique.sort_unstable();
    unique.dedup();
    if let Some(k) = unique.into_iter().find_map(single_int) {
        return Some(k);
    }
    cols_of("PRIMARY")
        .first()
        .filter(|c| is_int(&c.column))
        .map(|c| c.column.clone())
}

/// The primary key's columns in order (the dump's ORDER BY), empty without one.
pub fn primary_columns(indexes: &[IndexColumn]) -> Vec<String> {
    let mut v: Vec<&IndexColumn> = indexes.iter().filter(|c| c.index == "PRIMARY").collect();
    v.sort_by_key(|c| c.seq);
    v.into_iter().map(|c| c.column.clone()).collect()
}

/// The first regular chunk of a table with at least two is cut again at these fractions of
/// its range (the ramp: pieces of 1/8, 1/8, 1/4 and 1/2 of a chunk).
const RAMP: [i128; 3] = [8, 4, 2];

/// The cut points of a key range `[min, max]` with about `estimate` rows, `rows` per chunk.
///
/// The ramp: when the range makes two chunks or more, the first one is cut again at 1/8, 1/4
/// and 1/2 of its width, so the first files of every table are written within a few
/// milliseconds and the load beside the dump starts at once instead of after a whole chunk
/// per connection (each piece of the ramp is dumped while the load works on the one before:
/// the dump is faster than the load).
pub fn cut_points(min: i128, max: i128, estimate: u64, rows: u64) -> Vec<i128> {
    if rows == 0 || estimate < rows || max <= min {
        return Vec::new();
    }
    let n = (estimate / rows).clamp(1, MAX_CHUNKS - 1) as i128;
    let step = (max - min) / n + 1;
    let mut out = Vec::new();
    if min + step < max {
        for f in RAMP {
            let cut = min + step / f;
            if cut > min && out.last().is_none_or(|l| *l < cut) {
                out.push(cut);
            }
        }
    }
    let mut cut = min + step;
    while cut <= max {
        out.push(cut);
        cut += step;
    }
    out
}

/// A table's plan: one chunk without a key, else the key's ranges.
pub fn plan(
    key: Option<&str>,
    min_max: Option<(i128, i128)>,
    estimate: u64,
    rows: u64,
) -> ChunkPlan {
    match (key, min_max) {
        (Some(k), Some((min, max))) => {
            let bounds = cut_points(min, max, estimate, rows);
            if bounds.is_empty() {
                ChunkPlan::default()
            } else {
                ChunkPlan {
                    key: Some(k.to_string()),
                    bounds: bounds.iter().map(i128::to_string).collect(),
                }
            }
        }
        _ => ChunkPlan::default(),
    }
}

/// Backquotes an identifier (doubling backquotes inside).
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The range condition of chunk `i` of a plan, or `None` (the whole table). A bound that is not
/// an integer (a damaged state file) is an error.
pub fn range_condition(plan: &ChunkPlan, i: u32) -> Result<Option<String>, String> {
    let Some(key) = &plan.key else {
        return Ok(None);
    };
    let n = plan.bounds.len();
    if n == 0 {
        return Ok(None);
    }
    let i = i as usize;
    if i > n {
        return Err(format!("chunk {i} is beyond the plan's {} chunks", n + 1));
    }
    let bound = |j: usize| -> Result<i128, String> {
        plan.bounds[j]
            .parse::<i128>()
            .map_err(|_| format!("chunk bound {:?} is not an integer", plan.bounds[j]))
    };
    let k = quote_ident(key);
    Ok(Some(if i == 0 {
        format!("({k} < {} OR {k} IS NULL)", bound(0)?)
    } else if i == n {
        format!("{k} >= {}", bound(n - 1)?)
    } else {
        format!("{k} >= {} AND {k} < {}", bound(i - 1)?, bound(i)?)
    }))
}

/// ` WHERE …` for a chunk's range and the task's `where` (either may be absent), or "".
pub fn where_clause(range: Option<&str>, user: &str) -> String {
    let user = user.trim();
    match (range, user.is_empty()) {
        (None, true) => String::new(),
        (None, false) => format!(" WHERE {user}"),
        (Some(r), true) => format!(" WHERE {r}"),
        (Some(r), false) => format!(" WHERE ({r}) AND ({user})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(index: &str, non_unique: bool, seq: u32, column: &str) -> IndexColumn {
        IndexColumn {
            index: index.into(),
            non_unique,
            seq,
            column: column.into(),
        }
    }

    #[test]
    fn key_choice_table() {
        let int = |c: &str| c.starts_with('i');
        let cases: Vec<(Vec<IndexColumn>, Option<&str>)> = vec![
            (vec![], None),
            (vec![ix("PRIMARY", false, 1, "id")], Some("id")),
            (vec![ix("PRIMARY", false, 1, "s")], None),
            (
                vec![ix("PRIMARY", false, 1, "s"), ix("u", false, 1, "iu")],
                Some("iu"),
            ),
            // A non-unique index is never a chunk key.
            (vec![ix("k", true, 1, "ik")], None),
            // Unique keys by name; a composite unique key is skipped.
            (
                vec![
                    ix("b", false, 1, "ib"),
                    ix("a", false, 1, "ia1"),
                    ix("a", false, 2, "ia2"),
                ],
                Some("ib"),
            ),
            // Composite primary key with an integer first column, when nothing better.
            (
                vec![ix("PRIMARY", false, 2, "s"), ix("PRIMARY", false, 1, "ia")],
                Some("ia"),
            ),
            (
                vec![ix("PRIMARY", false, 1, "s"), ix("PRIMARY", false, 2, "ia")],
                None,
            ),
        ];
        for (idx, want) in cases {
            assert_eq!(pick_key(&idx, int).as_deref(), want, "{idx:?}");
        }
        assert_eq!(
            primary_columns(&[ix("PRIMARY", false, 2, "b"), ix("PRIMARY", false, 1, "a")]),
            vec!["a", "b"]
        );
    }

    #[test]
    fn cut_points_table() {
        type Case = ((i128, i128, u64, u64), Vec<i128>);
        let cases: Vec<Case> = vec![
            // The first chunk (1..101) ramps: 1/8, 1/4, 1/2 of it.
            (
                (1, 1000, 1000, 100),
                vec![13, 26, 51, 101, 201, 301, 401, 501, 601, 701, 801, 901],
            ),
            // Fewer rows than one chunk: whole table.
            ((1, 1000, 99, 100), vec![]),
            // One value only.
            ((5, 5, 1000, 10), vec![]),
            // A step too narrow to cut again: only the cuts that fall inside it.
            ((0, 9, 10, 5), vec![1, 2, 5]),
            ((0, 3, 10, 5), vec![1, 2]),
            // Negative keys and the full unsigned range do not overflow.
            ((-10, 10, 40, 10), vec![-9, -7, -4, 2, 8]),
            (
                (0, u64::MAX as i128, 4, 2),
                vec![
                    (u64::MAX as i128 / 2 + 1) / 8,
                    (u64::MAX as i128 / 2 + 1) / 4,
                    (u64::MAX as i128 / 2 + 1) / 2,
                    (u64::MAX as i128) / 2 + 1,
                ],
            ),
        ];
        for ((min, max, est, rows), want) in cases {
            assert_eq!(
                cut_points(min, max, est, rows),
                want,
                "{min} {max} {est} {rows}"
            );
        }
        // An absurd estimate is capped (the ramp adds its three cuts).
        let capped = cut_points(0, i64::MAX as i128, u64::MAX, 1).len() as u64;
        assert!(
            (MAX_CHUNKS - 2..MAX_CHUNKS + 3).contains(&capped),
            "{capped}"
        );
    }

    #[test]
    fn chunk_conditions_cover_the_key_space() {
        let p = plan(Some("id"), Some((1, 1000)), 1000, 300);
        assert_eq!(p.bounds, vec!["42", "84", "168", "335", "669"]);
        assert_eq!(p.chunks(), 6);
        let conds: Vec<String> = (0..p.chunks())
            .map(|i| range_condition(&p, i).unwrap().unwrap())
            .collect();
        assert_eq!(
            conds,
            vec![
                "(`id` < 42 OR `id` IS NULL)",
                "`id` >= 42 AND `id` < 84",
                "`id` >= 84 AND `id` < 168",
                "`id` >= 168 AND `id` < 335",
                "`id` >= 335 AND `id` < 669",
                "`id` >= 669",
            ]
        );
        assert!(range_condition(&p, 6).is_err());
        let whole = plan(Some("id"), Some((1, 10)), 10, 400);
        assert_eq!(whole, ChunkPlan::default());
        assert_eq!(whole.chunks(), 1);
        assert_eq!(range_condition(&whole, 0).unwrap(), None);
        assert_eq!(plan(None, None, 10_000, 1), ChunkPlan::default());
        let odd = ChunkPlan {
            key: Some("a`b".into()),
            bounds: vec!["x".into()],
        };
        assert!(range_condition(&odd, 0).is_err());
        let odd = ChunkPlan {
            key: Some("a`b".into()),
            bounds: vec!["-3".into()],
        };
        assert_eq!(
            range_condition(&odd, 1).unwrap().as_deref(),
            Some("`a``b` >= -3")
        );
    }

    #[test]
    fn where_clause_table() {
        let cases = [
            (None, "", ""),
            (None, " a>1 ", " WHERE a>1"),
            (Some("`id` >= 5"), "", " WHERE `id` >= 5"),
            (
                Some("`id` >= 5"),
                "a>1 OR b",
                " WHERE (`id` >= 5) AND (a>1 OR b)",
            ),
        ];
        for (range, user, want) in cases {
            assert_eq!(where_clause(range, user), want);
        }
    }
}
