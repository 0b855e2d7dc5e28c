//! Row events → full rows of [`Value`]s, with the table metadata needed to read them right.
//!
//! [`TableMeta::from_tme`] reads a TABLE_MAP event, including MariaDB's optional metadata
//! (`binlog_row_metadata=FULL`: column names, signedness, charsets, ENUM/SET members, PK);
//! [`decode_rows`] decodes a WRITE/UPDATE/DELETE rows event (v1 and v2) through mysql_common and
//! turns each image into one [`Value`] per table column. The sync unit calls both for every rows
//! event. mysql_common's quirks are fixed here (crates.md §2): integers get their signedness
//! from the metadata (BIGINT UNSIGNED max is not −1), TIMESTAMP arrives as unix seconds text,
//! YEAR as `1900+n` text, ENUM as its index, SET as little-endian bytes, BIT as big-endian bytes,
//! BINARY(n) without its trailing zero bytes, and TIME(1..4) wrongly when negative (so TIME(n)
//! columns are read as raw bytes and decoded here). A column absent from a MINIMAL/NOBLOB image
//! becomes [`Value::Missing`]: this module never invents data, and its own code never panics on
//! a malformed event (errors are [`RowsError`]).

use mysql_async::binlog::BinlogVersion;
use mysql_async::binlog::events::{
    Event, EventData, FormatDescriptionEvent, OptionalMetadataField, RowsEventData, TableMapEvent,
};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;

use crate::dml::Value;

/// The `binary` charset/collation id.
const BINARY_CHARSET: u16 = 63;

/// One column of a binlogged table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMeta {
    /// From `binlog_row_metadata=FULL`; `None` without it.
    pub name: Option<String>,
    /// UNSIGNED (from FULL metadata; `false` without it).
    pub unsigned: bool,
    /// The real type (ENUM/SET resolved from MYSQL_TYPE_STRING's metadata).
    pub column_type: ColumnType,
    /// Collation id of a character column (FULL metadata only).
    pub charset: Option<u16>,
    /// A character column in the `binary` charset (BINARY, VARBINARY, BLOB).
    pub binary: bool,
    /// For CHAR/BINARY: the column's byte length (from the table map).
    pub max_len: usize,
    /// Fractional-second digits of TIME/DATETIME/TIMESTAMP (from the table map), else 0.
    pub decimals: u8,
    /// ENUM or SET member strings (FULL metadata only).
    pub members: Vec<String>,
    /// The column may hold NULL.
    pub nullable: bool,
}

/// A binlogged table: names, columns in binlog order, PK column indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    pub schema: String,
    pub table: String,
    pub columns: Vec<ColumnMeta>,
    /// From FULL metadata, else empty.
    pub primary_key: Vec<usize>,
}

/// One row change of a rows event; one [`Value`] per table column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowChange {
    Insert(Vec<Value>),
    Update {
        before: Vec<Value>,
        after: Vec<Value>,
    },
    Delete(Vec<Value>),
}

/// Why a rows event could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    #[error("rows event for table id {table_id} has {event} columns, its table map {meta}")]
    ColumnCount {
        table_id: u64,
        event: u64,
        meta: usize,
    },
    #[error("malformed rows event for `{schema}`.`{table}`: {source}")]
    Decode {
        schema: String,
        table: String,
        source: std::io::Error,
    },
    #[error("`{schema}`.`{table}` column {column}: unexpected {ty:?} value {value}")]
    Value {
        schema: String,
        table: String,
        column: usize,
        ty: ColumnType,
        value: String,
    },
    #[error("rows event for `{schema}`.`{table}` lacks its {which} image")]
    MissingImage {
        schema: String,
        table: String,
        which: &'static str,
    },
}

/// Types whose signedness is in the SIGNEDNESS metadata (one bit each, in column order).
fn has_signedness(t: ColumnType) -> bool {
    t.is_numeric_type()
}

/// Types whose charset is in the (DEFAULT_|COLUMN_)CHARSET metadata.
fn has_charset(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_VARCHAR | MYSQL_TYPE_BLOB
    )
}

impl TableMeta {
    /// Reads a TABLE_MAP event. Optional metadata that does not parse is ignored (names,
    /// signedness and PK are then unknown), never an error.
    pub fn from_tme(tme: &TableMapEvent<'_>) -> TableMeta {
        let n = tme.columns_count() as usize;
        let nulls = tme.null_bitmask();
        let mut columns: Vec<ColumnMeta> = (0..n)
            .map(|i| {
                let column_type = tme
                    .get_column_type(i)
                    .ok()
                    .flatten()
                    .unwrap_or(ColumnType::MYSQL_TYPE_NULL);
                let meta = tme.get_column_metadata(i).unwrap_or(&[]);
                let max_len = if column_type == ColumnType::MYSQL_TYPE_STRING && meta.len() >= 2 {
                    let (b0, b1) = (meta[0] as usize, meta[1] as usize);
                    if b0 & 0x30 != 0x30 {
                        b1 | (((b0 & 0x30) ^ 0x30) << 4)
                    } else {
                        b1
                    }
                } else {
                    0
                };
                let decimals = match column_type {
                    ColumnType::MYSQL_TYPE_TIME2
                    | ColumnType::MYSQL_TYPE_DATETIME2
                    | ColumnType::MYSQL_TYPE_TIMESTAMP2 => meta.first().copied().unwrap_or(0),
                    _ => 0,
                };
                ColumnMeta {
                    name: None,
                    unsigned: false,
                    column_type,
                    charset: None,
                    binary: false,
                    max_len,
                    decimals,
                    members: Vec::new(),
                    nullable: nulls.get(i).map(|b| *b).unwrap_or(true),
                }
            })
            .collect();
        let mut primary_key = Vec::new();
        let idx_of = |pred: &dyn Fn(ColumnType) -> bool, cols: &[ColumnMeta]| -> Vec<usize> {
            (0..cols.len())
                .filter(|&i| pred(cols[i].column_type))
                .collect()
        };
        let numeric = idx_of(&has_signedness, &columns);
        let chars = idx_of(&has_charset, &columns);
        let enums = idx_of(&|t| t == ColumnType::MYSQL_TYPE_ENUM, &columns);
        let sets = idx_of(&|t| t == ColumnType::MYSQL_TYPE_SET, &columns);

        for field in tme.iter_optional_meta() {
            let Ok(field) = field else { break };
            match field {
                OptionalMetadataField::Signedness(bits) => {
                    for (k, &i) in numeric.iter().enumerate() {
                        columns[i].unsigned = bits.get(k).map(|b| *b).unwrap_or(false);
                    }
                }
                OptionalMetadataField::DefaultCharset(dc) => {
                    let default = dc.default_charset();
                    for &i in &chars {
                        columns[i].charset = Some(default);
                    }
                    for nd in dc.iter_non_default() {
                        let Ok(nd) = nd else { break };
                        if let Some(&i) = chars.get(nd.column_index() as usize) {
                            columns[i].charset = Some(nd.charset());
                        }
                    }
                }
                OptionalMetadataField::ColumnCharset(cc) => {
                    for (&i, cs) in chars.iter().zip(cc.iter_charsets()) {
                        let Ok(cs) = cs else { break };
                        columns[i].charset = Some(cs);
                    }
                }
                OptionalMetadataField::ColumnName(names) => {
                    for (c, name) in columns.iter_mut().zip(names.iter_names()) {
                        let Ok(name) = name else { break };
                        c.name = Some(name.name().into_owned());
                    }
                }
                OptionalMetadataField::EnumStrValue(v) => {
                    for (&i, members) in enums.iter().zip(v.iter_values()) {
                        let Ok(members) = members else { break };
                        columns[i].members =
                            members.values().iter().map(|m| m.value().into()).collect();
                    }
                }
                OptionalMetadataField::SetStrValue(v) => {
                    for (&i, members) in sets.iter().zip(v.iter_values()) {
                        let Ok(members) = members else { break };
                        columns[i].members =
                            members.values().iter().map(|m| m.value().into()).collect();
                    }
                }
                OptionalMetadataField::SimplePrimaryKey(pk) => {
                    for i in pk.iter_indexes() {
                        let Ok(i) = i else { break };
                        if (i as usize) < n {
                            primary_key.push(i as usize);
                        }
                    }
                }
                OptionalMetadataField::PrimaryKeyWithPrefix(pk) => {
                    for k in pk.iter_keys() {
                        let Ok(k) = k else { break };
                        if (k.column_index() as usize) < n {
                            primary_key.push(k.column_index() as usize);
                        }
                    }
                }
                _ => {}
            }
        }
        for c in &mut columns {
            c.binary = c.charset == Some(BINARY_CHARSET);
        }
        TableMeta {
            schema: tme.database_name().into_owned(),
            table: tme.table_name().into_owned(),
            columns,
            primary_key,
        }
    }

    /// Column names, `@<i>` where the binlog carries none.
    pub fn column_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| c.name.clone().unwrap_or_else(|| format!("@{i}")))
            .collect()
    }
}

/// Decodes the rows of a WRITE/UPDATE/DELETE rows event (v1 and v2) into full rows (one Value
/// per table column; a column absent from the row image becomes [`Value::Missing`]).
pub fn decode_rows(
    ev: &RowsEventData<'_>,
    tme: &TableMapEvent<'_>,
    meta: &TableMeta,
) -> Result<Vec<RowChange>, RowsError> {
    let n = meta.columns.len();
    if ev.num_columns() != n as u64 {
        return Err(RowsError::ColumnCount {
            table_id: ev.table_id(),
            event: ev.num_columns(),
            meta: n,
        });
    }
    let before_bits: Option<Vec<bool>> = ev.columns_before_image().map(|b| {
        (0..n)
            .map(|i| b.get(i).map(|x| *x).unwrap_or(false))
            .collect()
    });
    let after_bits: Option<Vec<bool>> = ev.columns_after_image().map(|b| {
        (0..n)
            .map(|i| b.get(i).map(|x| *x).unwrap_or(false))
            .collect()
    });
    let malformed = |source| RowsError::Decode {
        schema: meta.schema.clone(),
        table: meta.table.clone(),
        source,
    };
    let missing = |which| RowsError::MissingImage {
        schema: meta.schema.clone(),
        table: meta.table.clone(),
        which,
    };
    let rebuilt;
    let tme = if meta.columns.iter().any(time2_by_hand) {
        rebuilt = time2_as_bytes(tme, meta).map_err(malformed)?;
        &rebuilt
    } else {
        tme
    };
    let mut out = Vec::new();
    for item in ev.rows(tme) {
        let (before, after) = item.map_err(malformed)?;
        let before = match (before, &before_bits) {
            (Some(r), Some(bits)) => Some(image(&r, bits, meta)?),
            _ => None,
        };
        let after = match (after, &after_bits) {
            (Some(r), Some(bits)) => Some(image(&r, bits, meta)?),
            _ => None,
        };
        out.push(match ev {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                RowChange::Insert(after.ok_or_else(|| missing("after"))?)
            }
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                RowChange::Delete(before.ok_or_else(|| missing("before"))?)
            }
            RowsEventData::UpdateRowsEventV1(_)
            | RowsEventData::UpdateRowsEvent(_)
            | RowsEventData::PartialUpdateRowsEvent(_) => RowChange::Update {
                before: before.ok_or_else(|| missing("before"))?,
                after: after.ok_or_else(|| missing("after"))?,
            },
        });
    }
    Ok(out)
}

/// TIME(n) columns we decode ourselves: mysql_common 0.37 gets negative TIME(1..4) wrong (and
/// overflows on TIME(1|2) — a panic in debug builds).
fn time2_by_hand(c: &ColumnMeta) -> bool {
    c.column_type == ColumnType::MYSQL_TYPE_TIME2 && (1..=4).contains(&c.decimals)
}

/// Storage bytes of a TIME2 value with `dec` fractional digits.
fn time2_len(dec: u8) -> u8 {
    3 + dec.div_ceil(2)
}

/// The table map again, with every TIME(n) column declared as BIT of the same byte width, so
/// mysql_common hands its raw bytes over for [`time2_from_bytes`]. The optional metadata is
/// dropped: decoding needs none of it (signedness is applied from `meta` in [`convert`]).
fn time2_as_bytes(
    tme: &TableMapEvent<'_>,
    meta: &TableMeta,
) -> std::io::Result<TableMapEvent<'static>> {
    let n = meta.columns.len();
    let mut types = Vec::with_capacity(n);
    let mut metadata = Vec::new();
    for (i, c) in meta.columns.iter().enumerate() {
        if c.column_type == ColumnType::MYSQL_TYPE_TIME2 {
            types.push(ColumnType::MYSQL_TYPE_BIT as u8);
            metadata.extend_from_slice(&[0, time2_len(c.decimals)]);
            continue;
        }
        let raw = tme
            .get_raw_column_type(i)
            .ok()
            .flatten()
            .ok_or_else(|| bad_map("unknown column type"))?;
        types.push(raw as u8);
        metadata.extend_from_slice(tme.get_column_metadata(i).unwrap_or(&[]));
    }
    let mut body = Vec::new();
    body.extend_from_slice(&tme.table_id().to_le_bytes()[..6]);
    body.extend_from_slice(&[0, 0]);
    for name in [tme.database_name_raw(), tme.table_name_raw()] {
        let len = u8::try_from(name.len()).map_err(|_| bad_map("name too long"))?;
        body.push(len);
        body.extend_from_slice(name);
        body.push(0);
    }
    put_lenenc(n as u64, &mut body);
    body.extend_from_slice(&types);
    put_lenenc(metadata.len() as u64, &mut body);
    body.extend_from_slice(&metadata);
    let nulls = tme.null_bitmask();
    let mut bits = vec![0u8; n.div_ceil(8)];
    for i in 0..n {
        if nulls.get(i).map(|b| *b).unwrap_or(true) {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    body.extend_from_slice(&bits);
    let size = u32::try_from(19 + body.len()).map_err(|_| bad_map("too large"))?;
    let mut raw = Vec::with_capacity(size as usize);
    raw.extend_from_slice(&0u32.to_le_bytes());
    raw.push(19); // TABLE_MAP_EVENT
    raw.extend_from_slice(&0u32.to_le_bytes());
    raw.extend_from_slice(&size.to_le_bytes());
    raw.extend_from_slice(&0u32.to_le_bytes());
    raw.extend_from_slice(&0u16.to_le_bytes());
    raw.extend_from_slice(&body);
    let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
    let ev = Event::read(&fde, &raw[..])?;
    match ev.read_data()? {
        Some(EventData::TableMapEvent(t)) => Ok(t.into_owned()),
        _ => Err(bad_map("did not re-read as a table map")),
    }
}

fn bad_map(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("table map: {what}"),
    )
}

fn put_lenenc(v: u64, out: &mut Vec<u8>) {
    match v {
        0..=250 => out.push(v as u8),
        251..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&v.to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// A TIME2 value from its storage bytes (`dec` fractional digits): big-endian, offset by
/// 0x800000 (whole part) / 0x800000000000 (dec 5–6); a negative value with a fraction borrows
/// one from the whole part.
pub fn time2_from_bytes(b: &[u8], dec: u8) -> Option<Value> {
    if b.len() != time2_len(dec) as usize {
        return None;
    }
    let be = |s: &[u8]| s.iter().fold(0i64, |acc, x| (acc << 8) | *x as i64);
    let int = be(&b[..3]) - 0x80_0000;
    let packed = match dec {
        0 => int << 24,
        1 | 2 => {
            let f = b[3] as i64;
            let (int, f) = if int < 0 && f > 0 {
                (int + 1, f - 0x100)
            } else {
                (int, f)
            };
            (int << 24) + f * 10_000
        }
        3 | 4 => {
            let f = be(&b[3..5]);
            let (int, f) = if int < 0 && f > 0 {
                (int + 1, f - 0x1_0000)
            } else {
                (int, f)
            };
            (int << 24) + f * 100
        }
        5 | 6 => be(&b[..6]) - 0x8000_0000_0000,
        _ => return None,
    };
    let negative = packed < 0;
    let p = packed.unsigned_abs();
    let hms = p >> 24;
    Some(Value::Time {
        negative,
        hours: ((hms >> 12) & 0x3ff) as u32,
        minute: ((hms >> 6) & 0x3f) as u8,
        second: (hms & 0x3f) as u8,
        micros: (p & 0xff_ffff) as u32,
    })
}

/// One row image (only the present columns, in order) → a full row.
fn image(
    row: &mysql_async::binlog::row::BinlogRow,
    present: &[bool],
    meta: &TableMeta,
) -> Result<Vec<Value>, RowsError> {
    let mut k = 0;
    let mut values = Vec::with_capacity(present.len());
    for (i, &here) in present.iter().enumerate() {
        if !here {
            values.push(Value::Missing);
            continue;
        }
        let v = row.as_ref(k);
        k += 1;
        let col = &meta.columns[i];
        values.push(convert(v, col).map_err(|value| RowsError::Value {
            schema: meta.schema.clone(),
            table: meta.table.clone(),
            column: i,
            ty: col.column_type,
            value,
        })?);
    }
    Ok(values)
}

/// One decoded binlog value → a [`Value`]; the error is the offending value's debug text.
pub fn convert(v: Option<&BinlogValue<'_>>, col: &ColumnMeta) -> Result<Value, String> {
    use ColumnType::*;
    use mysql_async::Value as V;
    let Some(v) = v else {
        return Err("absent".into());
    };
    let v = match v {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            // MySQL's binary JSON (MariaDB logs JSON as LONGTEXT and never gets here).
            let json = serde_json::Value::try_from(j.clone()).map_err(|e| e.to_string())?;
            return Ok(Value::Bytes(json.to_string().into_bytes()));
        }
        BinlogValue::JsonDiff(_) => return Err("partial JSON update".into()),
    };
    if matches!(v, V::NULL) {
        return Ok(Value::Null);
    }
    let bad = || format!("{v:?}");
    let t = col.column_type;
    Ok(match t {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
        | MYSQL_TYPE_LONGLONG => {
            let raw: i128 = match v {
                V::Int(i) => *i as i128,
                V::UInt(u) => *u as i128,
                _ => return Err(bad()),
            };
            let bits = match t {
                MYSQL_TYPE_TINY => 8,
                MYSQL_TYPE_SHORT => 16,
                MYSQL_TYPE_INT24 => 24,
                MYSQL_TYPE_LONG => 32,
                _ => 64,
            };
            let unsigned = (raw as u128 as u64) & (u64::MAX >> (64 - bits));
            if col.unsigned {
                Value::UInt(unsigned)
            } else {
                // Sign-extend from `bits`.
                let shift = 64 - bits;
                Value::Int(((unsigned << shift) as i64) >> shift)
            }
        }
        MYSQL_TYPE_FLOAT => match v {
            V::Float(f) => Value::float(*f),
            V::Double(f) => Value::float(*f as f32),
            _ => return Err(bad()),
        },
        MYSQL_TYPE_DOUBLE => match v {
            V::Double(f) => Value::double(*f),
            V::Float(f) => Value::double(f64::from(*f)),
            _ => return Err(bad()),
        },
        MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => match v {
            V::Bytes(b) => Value::Decimal(String::from_utf8(b.clone()).map_err(|_| bad())?),
            _ => return Err(bad()),
        },
        MYSQL_TYPE_YEAR => match v {
            V::Bytes(b) => {
                let y: u16 = std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(bad)?;
                // The stored byte is year-1900, with 0 for the zero year.
                Value::Year(if y == 1900 { 0 } else { y })
            }
            V::Int(i) => Value::Year(u16::try_from(*i).map_err(|_| bad())?),
            _ => return Err(bad()),
        },
        MYSQL_TYPE_NEWDATE | MYSQL_TYPE_DATE => match v {
            V::Date(year, month, day, ..) => Value::Date {
                year: *year,
                month: *month,
                day: *day,
            },
            _ => return Err(bad()),
        },
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => match v {
            V::Date(year, month, day, hour, minute, second, micros) => Value::DateTime {
                year: *year,
                month: *month,
                day: *day,
                hour: *hour,
                minute: *minute,
                second: *second,
                micros: *micros,
            },
            _ => return Err(bad()),
        },
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => match v {
            // Raw bytes from the rebuilt table map (see `time2_as_bytes`).
            V::Bytes(b) if t == MYSQL_TYPE_TIME2 => {
                time2_from_bytes(b, col.decimals).ok_or_else(bad)?
            }
            V::Time(negative, days, hours, minute, second, micros) => Value::Time {
                negative: *negative,
                hours: days * 24 + *hours as u32,
                minute: *minute,
                second: *second,
                micros: *micros,
            },
            _ => return Err(bad()),
        },
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => match v {
            V::Int(secs) => Value::Timestamp {
                secs: u64::from(*secs as u32),
                micros: 0,
            },
            V::Bytes(b) => parse_timestamp(b).ok_or_else(bad)?,
            _ => return Err(bad()),
        },
        MYSQL_TYPE_ENUM => match v {
            V::Int(i) => Value::Enum(u16::try_from(*i).map_err(|_| bad())?),
            _ => return Err(bad()),
        },
        MYSQL_TYPE_SET => match v {
            V::Bytes(b) if b.len() <= 8 => Value::Set(
                b.iter()
                    .rev()
                    .fold(0u64, |acc, byte| (acc << 8) | *byte as u64),
            ),
            _ => return Err(bad()),
        },
        MYSQL_TYPE_BIT => match v {
            V::Bytes(b) if b.len() <= 8 => {
                Value::Bit(b.iter().fold(0u64, |acc, byte| (acc << 8) | *byte as u64))
            }
            _ => return Err(bad()),
        },
        MYSQL_TYPE_STRING => match v {
            V::Bytes(b) => {
                let mut b = b.clone();
                // BINARY(n) is logged without its trailing 0x00 padding; the stored value has it.
                if col.binary && b.len() < col.max_len {
                    b.resize(col.max_len, 0);
                }
                Value::Bytes(b)
            }
            _ => return Err(bad()),
        },
        _ => match v {
            V::Bytes(b) => Value::Bytes(b.clone()),
            _ => return Err(bad()),
        },
    })
}

/// `"<secs>"` or `"<secs>.<micros>"` (mysql_common's TIMESTAMP2 text).
fn parse_timestamp(b: &[u8]) -> Option<Value> {
    let s = std::str::from_utf8(b).ok()?;
    let (secs, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    // mysql_common reads the u32 seconds as i32: undo that for times past 2038.
    let secs: i64 = secs.parse().ok()?;
    let secs = if secs < 0 { secs + (1i64 << 32) } else { secs };
    let micros = match frac {
        Some(f) if f.len() <= 6 && f.bytes().all(|c| c.is_ascii_digit()) => {
            f.parse::<u32>().ok()? * 10u32.pow(6 - f.len() as u32)
        }
        Some(_) => return None,
        None => 0,
    };
    Some(Value::Timestamp {
        secs: u64::try_from(secs).ok()?,
        micros,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_async::Value as V;

    fn col(t: ColumnType, unsigned: bool) -> ColumnMeta {
        ColumnMeta {
            name: None,
            unsigned,
            column_type: t,
            charset: None,
            binary: false,
            max_len: 0,
            decimals: 0,
            members: vec![],
            nullable: true,
        }
    }

    #[test]
    fn binlog_values_convert_with_the_metadata() {
        use ColumnType::*;
        let mut binary4 = col(MYSQL_TYPE_STRING, false);
        binary4.binary = true;
        binary4.max_len = 4;
        let char4 = ColumnMeta {
            binary: false,
            ..binary4.clone()
        };
        let cases: Vec<(V, ColumnMeta, Value)> = vec![
            (V::NULL, col(MYSQL_TYPE_LONG, false), Value::Null),
            (
                V::Int(-1),
                col(MYSQL_TYPE_LONGLONG, true),
                Value::UInt(u64::MAX),
            ),
            (
                V::UInt(u64::MAX),
                col(MYSQL_TYPE_LONGLONG, false),
                Value::Int(-1),
            ),
            (V::Int(-128), col(MYSQL_TYPE_TINY, false), Value::Int(-128)),
            (V::Int(-1), col(MYSQL_TYPE_TINY, true), Value::UInt(255)),
            (V::UInt(255), col(MYSQL_TYPE_TINY, false), Value::Int(-1)),
            (
                V::Int(8_388_607),
                col(MYSQL_TYPE_INT24, false),
                Value::Int(8_388_607),
            ),
            (
                V::Int(-8_388_608),
                col(MYSQL_TYPE_INT24, true),
                Value::UInt(8_388_608),
            ),
            (
                V::Int(-1),
                col(MYSQL_TYPE_LONG, true),
                Value::UInt(4_294_967_295),
            ),
            (
                V::Float(1.5),
                col(MYSQL_TYPE_FLOAT, false),
                Value::float(1.5),
            ),
            (
                V::Double(0.1),
                col(MYSQL_TYPE_DOUBLE, false),
                Value::double(0.1),
            ),
            (
                V::Bytes(b"-1.50".to_vec()),
                col(MYSQL_TYPE_NEWDECIMAL, false),
                Value::Decimal("-1.50".into()),
            ),
            (
                V::Bytes(b"1900".to_vec()),
                col(MYSQL_TYPE_YEAR, false),
                Value::Year(0),
            ),
            (
                V::Bytes(b"2155".to_vec()),
                col(MYSQL_TYPE_YEAR, false),
                Value::Year(2155),
            ),
            (
                V::Bytes(b"1704164645".to_vec()),
                col(MYSQL_TYPE_TIMESTAMP2, false),
                Value::Timestamp {
                    secs: 1_704_164_645,
                    micros: 0,
                },
            ),
            (
                V::Bytes(b"-1.000010".to_vec()),
                col(MYSQL_TYPE_TIMESTAMP2, false),
                Value::Timestamp {
                    secs: 4_294_967_295,
                    micros: 10,
                },
            ),
            (
                V::Time(true, 34, 22, 59, 59, 1),
                col(MYSQL_TYPE_TIME2, false),
                Value::Time {
                    negative: true,
                    hours: 838,
                    minute: 59,
                    second: 59,
                    micros: 1,
                },
            ),
            (V::Int(2), col(MYSQL_TYPE_ENUM, false), Value::Enum(2)),
            (
                V::Bytes(vec![0x05, 0x01]),
                col(MYSQL_TYPE_SET, false),
                Value::Set(0x0105),
            ),
            (
                V::Bytes(vec![0x80, 0x01]),
                col(MYSQL_TYPE_BIT, false),
                Value::Bit(0x8001),
            ),
            (
                V::Bytes(b"A".to_vec()),
                binary4,
                Value::Bytes(b"A\0\0\0".to_vec()),
            ),
            (V::Bytes(b"A".to_vec()), char4, Value::Bytes(b"A".to_vec())),
            (
                V::Bytes(b"{\"a\":1}".to_vec()),
                col(MYSQL_TYPE_BLOB, false),
                Value::Bytes(b"{\"a\":1}".to_vec()),
            ),
        ];
        for (v, c, want) in cases {
            let got = convert(Some(&BinlogValue::Value(v.clone())), &c);
            assert_eq!(got, Ok(want), "{v:?} as {:?}", c.column_type);
        }
    }

    fn time(negative: bool, hours: u32, minute: u8, second: u8, micros: u32) -> Value {
        Value::Time {
            negative,
            hours,
            minute,
            second,
            micros,
        }
    }

    #[test]
    fn time2_storage_bytes_decode_including_negative_fractions() {
        let max6 = ((((838i64 << 12) | (59 << 6) | 59) << 24) + 999_999 + 0x8000_0000_0000)
            .to_be_bytes()[2..]
            .to_vec();
        let cases: Vec<(Vec<u8>, u8, Option<Value>)> = vec![
            (vec![0x80, 0x10, 0x83], 0, Some(time(false, 1, 2, 3, 0))),
            (vec![0x7f, 0xef, 0x7d], 0, Some(time(true, 1, 2, 3, 0))),
            (
                vec![0x80, 0x00, 0x01, 50],
                2,
                Some(time(false, 0, 0, 1, 500_000)),
            ),
            (
                vec![0x7f, 0xff, 0xfe, 0xce],
                2,
                Some(time(true, 0, 0, 1, 500_000)),
            ),
            (
                vec![0x7f, 0xff, 0xff, 0xff],
                1,
                Some(time(true, 0, 0, 0, 10_000)),
            ),
            (
                vec![0x7f, 0xff, 0xfe, 0xec, 0x78],
                4,
                Some(time(true, 0, 0, 1, 500_000)),
            ),
            (max6, 6, Some(time(false, 838, 59, 59, 999_999))),
            (vec![0x80, 0x00, 0x00, 0x00], 3, None),
            (vec![0x80, 0x00], 0, None),
        ];
        for (b, dec, want) in cases {
            assert_eq!(time2_from_bytes(&b, dec), want, "{b:02x?} dec {dec}");
        }
        let mut c = col(ColumnType::MYSQL_TYPE_TIME2, false);
        c.decimals = 2;
        assert_eq!(
            convert(
                Some(&BinlogValue::Value(V::Bytes(vec![0x7f, 0xff, 0xfe, 0xce]))),
                &c
            ),
            Ok(time(true, 0, 0, 1, 500_000))
        );
    }

    #[test]
    fn values_of_the_wrong_shape_are_errors() {
        use ColumnType::*;
        let cases: Vec<(V, ColumnType)> = vec![
            (V::Bytes(b"x".to_vec()), MYSQL_TYPE_LONG),
            (V::Int(1), MYSQL_TYPE_NEWDECIMAL),
            (V::Bytes(b"nope".to_vec()), MYSQL_TYPE_TIMESTAMP2),
            (V::Int(70_000), MYSQL_TYPE_ENUM),
            (V::Bytes(vec![0; 9]), MYSQL_TYPE_SET),
            (V::Int(1), MYSQL_TYPE_DATETIME2),
        ];
        for (v, t) in cases {
            assert!(
                convert(Some(&BinlogValue::Value(v.clone())), &col(t, false)).is_err(),
                "{v:?} as {t:?}"
            );
        }
        assert!(convert(None, &col(MYSQL_TYPE_LONG, false)).is_err());
    }
}
