//! MariaDB compressed binlog events (`log_bin_compress=ON`) turned back into plain events.
//!
//! MariaDB writes QUERY_COMPRESSED (165), WRITE/UPDATE/DELETE_ROWS_COMPRESSED_V1 (166–168) and
//! the v2 forms (169–171); mysql_common does not know them. [`uncompress`] keeps the uncompressed
//! head of the body (post-header; for QUERY the status variables and db name, for rows the
//! column count and bitmaps), inflates the rest (`0x80|n`, `n` bytes of big-endian length, a
//! zlib stream) and rebuilds the plain event (2, 23–25, 30–32) with a fresh CRC32, so
//! [`super::decode`] and `read_data` decode it. The sync unit calls it on every event before
//! decoding. It never touches events of other types, and it never trusts the stated lengths
//! beyond what the event holds (a corrupt event is an `InvalidData` error, not a panic).

use std::io::{self, Read};

use mysql_async::binlog::events::{BinlogEventHeader, Event, FormatDescriptionEvent};
use mysql_async::binlog::{BinlogChecksumAlg, EventType};

/// MariaDB's compressed event type codes.
pub mod event_type {
    pub const QUERY_COMPRESSED: u8 = 165;
    pub const WRITE_ROWS_COMPRESSED_V1: u8 = 166;
    pub const UPDATE_ROWS_COMPRESSED_V1: u8 = 167;
    pub const DELETE_ROWS_COMPRESSED_V1: u8 = 168;
    pub const WRITE_ROWS_COMPRESSED: u8 = 169;
    pub const UPDATE_ROWS_COMPRESSED: u8 = 170;
    pub const DELETE_ROWS_COMPRESSED: u8 = 171;
}

/// The plain event type a compressed MariaDB event stands for, or `None` for any other type.
pub fn plain_type(compressed: u8) -> Option<EventType> {
    use event_type::*;
    Some(match compressed {
        QUERY_COMPRESSED => EventType::QUERY_EVENT,
        WRITE_ROWS_COMPRESSED_V1 => EventType::WRITE_ROWS_EVENT_V1,
        UPDATE_ROWS_COMPRESSED_V1 => EventType::UPDATE_ROWS_EVENT_V1,
        DELETE_ROWS_COMPRESSED_V1 => EventType::DELETE_ROWS_EVENT_V1,
        WRITE_ROWS_COMPRESSED => EventType::WRITE_ROWS_EVENT,
        UPDATE_ROWS_COMPRESSED => EventType::UPDATE_ROWS_EVENT,
        DELETE_ROWS_COMPRESSED => EventType::DELETE_ROWS_EVENT,
        _ => return None,
    })
}

/// True for the compressed event types 165–171.
pub fn is_compressed(event_type: u8) -> bool {
    plain_type(event_type).is_some()
}

/// The largest event body we inflate to (MariaDB's `max_allowed_packet` ceiling is 1 GiB).
const MAX_UNCOMPRESSED: usize = 1 << 30;

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("compressed binlog event: {what}"),
    )
}

/// MariaDB compressed events → the equivalent plain event, so `decode`/`read_data` decode them;
/// any other event is returned unchanged. The stream's FDE comes from `ev.fde()`.
pub fn uncompress(ev: Event) -> io::Result<Event> {
    let header = ev.header();
    let Some(plain) = plain_type(header.event_type_raw()) else {
        return Ok(ev);
    };
    let fde = ev.fde();
    let data = ev.data();
    let keep = if plain == EventType::QUERY_EVENT {
        query_head_len(data, fde)?
    } else {
        rows_head_len(data, fde, plain)?
    };
    let (head, compressed) = data.split_at(keep);
    let body = inflate(compressed)?;

    let with_checksum = {
        let footer = fde.footer();
        footer.get_checksum_enabled()
            && matches!(footer.get_checksum_alg(), Ok(Some(alg)) if alg != BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_OFF)
    };
    let size = BinlogEventHeader::LEN + head.len() + body.len() + if with_checksum { 4 } else { 0 };
    let size32 = u32::try_from(size).map_err(|_| bad("uncompressed event too large"))?;
    let mut raw = Vec::with_capacity(size);
    raw.extend_from_slice(&header.timestamp().to_le_bytes());
    raw.push(plain as u8);
    raw.extend_from_slice(&header.server_id().to_le_bytes());
    raw.extend_from_slice(&size32.to_le_bytes());
    raw.extend_from_slice(&header.log_pos().to_le_bytes());
    raw.extend_from_slice(&header.flags_raw().to_le_bytes());
    raw.extend_from_slice(head);
    raw.extend_from_slice(&body);
    if with_checksum {
        let crc = crc32fast::hash(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
    }
    Event::read(fde, &raw[..])
}

/// QUERY body head: post-header, status variables, db name and its NUL.
fn query_head_len(data: &[u8], fde: &FormatDescriptionEvent<'_>) -> io::Result<usize> {
    let post = fde.get_event_type_header_length(EventType::QUERY_EVENT) as usize;
    if post < 13 || data.len() < post {
        return Err(bad("short QUERY post-header"));
    }
    let db_len = data[8] as usize;
    let status_len = u16::from_le_bytes([data[11], data[12]]) as usize;
    let keep = post + status_len + db_len + 1;
    if keep > data.len() {
        return Err(bad("QUERY head longer than the event"));
    }
    Ok(keep)
}

/// Rows body head: table id, flags, (v2) extra data, packed column count, column bitmap(s).
fn rows_head_len(
    data: &[u8],
    fde: &FormatDescriptionEvent<'_>,
    plain: EventType,
) -> io::Result<usize> {
    let post = fde.get_event_type_header_length(plain) as usize;
    let v2 = matches!(
        plain,
        EventType::WRITE_ROWS_EVENT | EventType::UPDATE_ROWS_EVENT | EventType::DELETE_ROWS_EVENT
    );
    let mut at = if post == 6 { 4 + 2 } else { 6 + 2 };
    if v2 && post == fde.get_event_type_header_length(EventType::WRITE_ROWS_EVENT) as usize {
        let extra = data
            .get(at..at + 2)
            .ok_or_else(|| bad("short rows post-header"))?;
        let extra = u16::from_le_bytes([extra[0], extra[1]]) as usize;
        at += extra.max(2);
    }
    let (ncols, width) = lenenc(data.get(at..).ok_or_else(|| bad("short rows event"))?)
        .ok_or_else(|| bad("bad column count"))?;
    at += width;
    let bitmap = usize::try_from(ncols.div_ceil(8)).map_err(|_| bad("bad column count"))?;
    let bitmaps =
        if plain == EventType::UPDATE_ROWS_EVENT || plain == EventType::UPDATE_ROWS_EVENT_V1 {
            2
        } else {
            1
        };
    let keep = bitmap
        .checked_mul(bitmaps)
        .and_then(|b| b.checked_add(at))
        .filter(|&k| k <= data.len())
        .ok_or_else(|| bad("rows head longer than the event"))?;
    Ok(keep)
}

/// A length-encoded integer: (value, bytes used).
fn lenenc(b: &[u8]) -> Option<(u64, usize)> {
    let first = *b.first()?;
    let n = match first {
        0..=0xfa => return Some((first as u64, 1)),
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let bytes = b.get(1..1 + n)?;
    let mut v = 0u64;
    for (i, byte) in bytes.iter().enumerate() {
        v |= (*byte as u64) << (8 * i);
    }
    Some((v, 1 + n))
}

/// MariaDB's compressed block: `0x80 | n`, `n` bytes of big-endian length, a zlib stream.
pub fn inflate(b: &[u8]) -> io::Result<Vec<u8>> {
    let first = *b.first().ok_or_else(|| bad("empty compressed block"))?;
    if first & 0x80 == 0 {
        return Err(bad("compressed block without its 0x80 marker"));
    }
    let n = (first & 0x07) as usize;
    let len_bytes = b
        .get(1..1 + n)
        .ok_or_else(|| bad("short compressed length"))?;
    let len = len_bytes
        .iter()
        .fold(0u64, |acc, byte| (acc << 8) | *byte as u64);
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_UNCOMPRESSED)
        .ok_or_else(|| bad("uncompressed length out of range"))?;
    let mut out = Vec::with_capacity(len);
    flate2::read::ZlibDecoder::new(&b[1 + n..])
        .take(len as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() != len {
        return Err(bad(&format!(
            "inflated to {} bytes, header says {len}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn block(payload: &[u8], lenlen: u8) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(payload).unwrap();
        let zdata = z.finish().unwrap();
        let mut out = vec![0x80 | lenlen];
        let len = payload.len() as u64;
        for i in (0..lenlen).rev() {
            out.push((len >> (8 * i)) as u8);
        }
        out.extend(zdata);
        out
    }

    #[test]
    fn blocks_inflate_or_fail_cleanly() {
        let payload = b"INSERT INTO t VALUES (1)".repeat(10);
        assert_eq!(inflate(&block(&payload, 1)).unwrap(), payload);
        assert_eq!(inflate(&block(&payload, 3)).unwrap(), payload);
        let mut lying = block(&payload, 2);
        lying[2] = lying[2].wrapping_add(1);
        let cases: Vec<(&[u8], &str)> = vec![
            (&[], "empty"),
            (&[0x01, 0x00], "marker"),
            (&[0x84, 0x00], "short"),
            (&lying, "header says"),
            (&[0x81, 0x05, 1, 2, 3], "invalid"),
        ];
        for (input, want) in cases {
            let err = inflate(input).unwrap_err().to_string();
            assert!(
                err.to_lowercase().contains(want) || err.contains("corrupt"),
                "{err}"
            );
        }
    }

    #[test]
    fn lenenc_table() {
        type Case<'a> = (&'a [u8], Option<(u64, usize)>);
        let cases: Vec<Case> = vec![
            (&[5], Some((5, 1))),
            (&[0xfc, 0x01, 0x02], Some((0x0201, 3))),
            (&[0xfd, 1, 0, 0], Some((1, 4))),
            (&[0xfc, 0x01], None),
            (&[0xff], None),
            (&[], None),
        ];
        for (b, want) in cases {
            assert_eq!(lenenc(b), want);
        }
    }

    #[test]
    fn only_compressed_types_map() {
        assert_eq!(plain_type(165), Some(EventType::QUERY_EVENT));
        assert_eq!(plain_type(167), Some(EventType::UPDATE_ROWS_EVENT_V1));
        assert_eq!(plain_type(171), Some(EventType::DELETE_ROWS_EVENT));
        assert!(!is_compressed(2) && !is_compressed(164) && !is_compressed(172));
    }
}
