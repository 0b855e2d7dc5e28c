//! A narrow client for the dump's chunk SELECTs: the MySQL text protocol read straight from
//! the socket into one buffer, each row's values handed to the chunk writer as slices of it.
//!
//! Why: the dump streams every row of the source. Through the driver each row is a pooled
//! packet buffer (a shared queue pop and push), a `Row` with one allocated `Vec` per value, a
//! clock read and a handful of futures — about a third of the worker's CPU in a full load
//! (bench/README.md). Here a row costs parsing its length-encoded values in place.
//!
//! It speaks only what a dump connection needs: the handshake with `mysql_native_password` or
//! `caching_sha2_password`'s fast path (packets and scrambles from `mysql_common`), `COM_QUERY`
//! for the session settings and `START TRANSACTION WITH CONSISTENT SNAPSHOT`, a streamed
//! result set, `COM_QUIT`. Anything else — a `security` (TLS) block, another authentication
//! plugin, a server that asks for full `caching_sha2_password` authentication — gives
//! [`Connect::Unsupported`], and the dump uses the driver's connections as before. Server
//! errors and I/O errors come back as the driver's error types, so the dump maps them to DM's
//! codes (and retries) exactly as it does the driver's.

use std::borrow::Cow;
use std::time::Duration;

use mysql_async::{Error as DbError, IoError, ServerError};
use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, AuthSwitchRequest, HandshakePacket, HandshakeResponse};
use mysql_common::proto::MySerialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::db::{DbConfig, TCP_KEEPALIVE};

/// The read buffer's size (grown for a bigger packet).
const BUF: usize = 128 << 10;
/// A packet's largest payload; a longer one continues in the next packet.
const MAX_PAYLOAD: usize = 0xFF_FFFF;
/// The `max_packet_size` the client announces (as the driver's default).
const MAX_PACKET: u32 = 64 << 20;

/// How [`RawConn::connect`] ended.
pub enum Connect {
    Connected(RawConn),
    /// The server or the configuration needs something this client does not speak: use the
    /// driver. The reason is for the log.
    Unsupported(String),
}

/// One dump connection.
pub struct RawConn {
    stream: TcpStream,
    id: u32,
    /// Read buffer: `buf[start..end]` is received and not consumed yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The next sequence id to send.
    seq: u8,
    /// A payload that spans several packets, joined.
    joined: Vec<u8>,
    /// The current row's values: `(offset, len)` in the payload, `None` for NULL.
    spans: Vec<Option<(usize, usize)>>,
    /// Columns of the result set being streamed (`None`: no result set open).
    columns: Option<usize>,
}

/// One row of a streamed result set, valid until the next [`RawConn::next_row`].
pub struct RawRow<'a> {
    payload: &'a [u8],
    spans: &'a [Option<(usize, usize)>],
}

impl RawRow<'_> {
    /// Value `i` (`None`: NULL, or no such column).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let (at, len) = (*self.spans.get(i)?)?;
        Some(&self.payload[at..at + len])
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

fn io(e: std::io::Error) -> DbError {
    DbError::Io(IoError::Io(e))
}

fn protocol(what: &str) -> DbError {
    io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("unexpected packet from the server: {what}"),
    ))
}

/// The server error of an ERR packet's payload.
fn server_error(p: &[u8]) -> DbError {
    let code = p.get(1..3).map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
    let (state, msg) = match p.get(3) {
        Some(b'#') if p.len() >= 9 => (String::from_utf8_lossy(&p[4..9]).into_owned(), &p[9..]),
        _ => (String::from("HY000"), p.get(3..).unwrap_or_default()),
    };
    DbError::Server(ServerError {
        code,
        message: String::from_utf8_lossy(msg).into_owned(),
        state,
    })
}

/// A length-encoded integer at `p[at..]`: (value, bytes taken). `None`: cut short, or NULL
/// (0xFB) / not an integer (0xFF).
pub fn lenenc(p: &[u8], at: usize) -> Option<(u64, usize)> {
    let first = *p.get(at)?;
    let wide = |n: usize| -> Option<(u64, usize)> {
        let b = p.get(at + 1..at + 1 + n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(b);
        Some((u64::from_le_bytes(v), 1 + n))
    };
    match first {
        0..=0xFA => Some((u64::from(first), 1)),
        0xFC => wide(2),
        0xFD => wide(3),
        0xFE => wide(8),
        _ => None,
    }
}

/// Splits a text-protocol row payload into `n` values (`spans`); `false` when it does not
/// hold exactly `n` values.
pub fn parse_row(p: &[u8], n: usize, spans: &mut Vec<Option<(usize, usize)>>) -> bool {
    spans.clear();
    let mut at = 0;
    for _ in 0..n {
        if p.get(at) == Some(&0xFB) {
            spans.push(None);
            at += 1;
            continue;
        }
        let Some((len, took)) = lenenc(p, at) else {
            return false;
        };
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        let start = at + took;
        if start.checked_add(len).is_none_or(|e| e > p.len()) {
            return false;
        }
        spans.push(Some((start, len)));
        at = start + len;
    }
    at == p.len()
}

/// The payload [`RawConn::read_packet`] read: its range in the read buffer, or (`None`) the
/// payload joined from several packets.
fn payload<'a>(buf: &'a [u8], joined: &'a [u8], range: Option<(usize, usize)>) -> &'a [u8] {
    match range {
        Some((a, b)) => &buf[a..b],
        None => joined,
    }
}

/// An EOF packet (`0xFE` and shorter than 9 bytes; a row can start with 0xFE only as a value
/// of 2^24 bytes or more).
fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xFE) && p.len() < 9
}

impl RawConn {
    /// Connects and logs in as `from` says, within `timeout`. Errors are the server's (access
    /// denied, too many connections) or the network's.
    pub async fn connect(from: &DbConfig, timeout: Duration) -> Result<Connect, DbError> {
        if from.uses_tls() {
            return Ok(Connect::Unsupported("TLS (a security block)".into()));
        }
        match tokio::time::timeout(timeout, Self::login(from)).await {
            Ok(r) => r,
            Err(_) => Err(io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no connection to {}:{} within {timeout:?}",
                    from.host, from.port
                ),
            ))),
        }
    }

    async fn login(from: &DbConfig) -> Result<Connect, DbError> {
        let stream = TcpStream::connect((from.host.as_str(), from.port))
            .await
            .map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE))
            .map_err(io)?;
        let mut c = RawConn {
            stream,
            id: 0,
            buf: vec![0; BUF],
            start: 0,
            end: 0,
            seq: 0,
            joined: Vec::new(),
            spans: Vec::new(),
            columns: None,
        };
        let hello = c.read_payload().await?.to_vec();
        if hello.first() == Some(&0xFF) {
            return Err(server_error(&hello));
        }
        let hs: HandshakePacket<'_> = ParseBuf(&hello)
            .parse(())
            .map_err(|e| protocol(&format!("handshake: {e}")))?;
        let want = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_LONG_PASSWORD
            | CapabilityFlags::CLIENT_LONG_FLAG
            | CapabilityFlags::CLIENT_TRANSACTIONS;
        let needed = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH;
        if !hs.capabilities().contains(needed) {
            return Ok(Connect::Unsupported(
                "an old server (no protocol 4.1 plugin authentication)".into(),
            ));
        }
        let caps = hs.capabilities() & want;
        c.id = hs.connection_id();
        let mut nonce = hs.scramble_1_ref().to_vec();
        nonce.extend_from_slice(hs.scramble_2_ref().unwrap_or_default());
        nonce.resize(20, 0);
        let mut plugin = match hs.auth_plugin() {
            Some(AuthPlugin::CachingSha2Password) => AuthPlugin::CachingSha2Password,
            _ => AuthPlugin::MysqlNativePassword,
        };
        let pass = from.plain_password();
        let pass = (!pass.is_empty()).then_some(pass.as_str());
        let version = hs
            .maria_db_server_version_parsed()
            .or_else(|| hs.server_version_parsed())
            .unwrap_or((0, 0, 0));
        let data = plugin.gen_data(pass, &nonce);
        let response = HandshakeResponse::new(
            data.as_deref().map(|d| Cow::Owned(d.to_vec())),
            version,
            Some(from.user.as_bytes()),
            None::<&[u8]>,
            Some(plugin.clone()),
            caps,
            None,
            MAX_PACKET,
        );
        let mut out = Vec::new();
        response.serialize(&mut out);
        // The handshake is the server's packet 0: the response is 1.
        c.seq = 1;
        c.send(&out).await?;
        let mut switched = false;
        loop {
            let p = c.read_payload().await?.to_vec();
            match p.first() {
                Some(0x00) => return Ok(Connect::Connected(c)),
                Some(0xFF) => return Err(server_error(&p)),
                Some(0xFE) if !switched => {
                    switched = true;
                    let req: AuthSwitchRequest<'_> = ParseBuf(&p)
                        .parse(())
                        .map_err(|e| protocol(&format!("auth switch: {e}")))?;
                    plugin = match req.auth_plugin() {
                        AuthPlugin::MysqlNativePassword => AuthPlugin::MysqlNativePassword,
                        AuthPlugin::CachingSha2Password => AuthPlugin::CachingSha2Password,
                        other => {
                            return Ok(Connect::Unsupported(format!(
                                "the authentication plugin {}",
                                String::from_utf8_lossy(other.as_bytes())
                            )));
                        }
                    };
                    let mut nonce = req.plugin_data().to_vec();
                    if nonce.last() == Some(&0) {
                        nonce.pop();
                    }
                    let data = plugin.gen_data(pass, &nonce);
                    c.send(data.as_deref().unwrap_or_default()).await?;
                }
                // caching_sha2_password: 3 = fast authentication succeeded (an OK follows);
                // 4 = full authentication, which needs TLS or the server's RSA key.
                Some(0x01) if plugin == AuthPlugin::CachingSha2Password => match p.get(1) {
                    Some(3) => {}
                    _ => {
                        return Ok(Connect::Unsupported(
                            "caching_sha2_password full authentication".into(),
                        ));
                    }
                },
                _ => {
                    return Ok(Connect::Unsupported(
                        "an unknown authentication step".into(),
                    ));
                }
            }
        }
    }

    /// The server's connection id (for `KILL QUERY`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Sends one packet (a payload shorter than 16 MiB) with the next sequence id.
    async fn send(&mut self, payload: &[u8]) -> Result<(), DbError> {
        if payload.len() >= MAX_PAYLOAD {
            return Err(protocol("a statement of 16 MiB or more"));
        }
        let len = payload.len() as u32;
        let mut frame = Vec::with_capacity(4 + payload.len());
        frame.extend_from_slice(&len.to_le_bytes()[..3]);
        frame.push(self.seq);
        frame.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.stream.write_all(&frame).await.map_err(io)
    }

    /// Makes `n` bytes available at `buf[start..]` (reading, compacting or growing the buffer).
    async fn fill(&mut self, n: usize) -> Result<(), DbError> {
        while self.end - self.start < n {
            if self.start + n > self.buf.len() {
                // Move what is left to the front (and grow for a big packet).
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if n > self.buf.len() {
                    self.buf.resize(n.next_power_of_two(), 0);
                }
            }
            let got = self
                .stream
                .read(&mut self.buf[self.end..])
                .await
                .map_err(io)?;
            if got == 0 {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
            self.end += got;
        }
        Ok(())
    }

    /// Reads one packet's header and payload into the buffer: the payload's range in `buf`
    /// (consumed), or, for a payload over several packets, `None` with it in `joined`.
    async fn read_packet(&mut self) -> Result<Option<(usize, usize)>, DbError> {
        let mut first = true;
        loop {
            self.fill(4).await?;
            let h = &self.buf[self.start..self.start + 4];
            let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
            self.seq = h[3].wrapping_add(1);
            self.fill(4 + len).await?;
            let at = self.start + 4;
            self.start = at + len;
            if first && len < MAX_PAYLOAD {
                return Ok(Some((at, at + len)));
            }
            if first {
                self.joined.clear();
                first = false;
            }
            self.joined.extend_from_slice(&self.buf[at..at + len]);
            if len < MAX_PAYLOAD {
                return Ok(None);
            }
        }
    }

    /// Reads one packet's payload (owned by the buffer until the next read).
    async fn read_payload(&mut self) -> Result<&[u8], DbError> {
        let range = self.read_packet().await?;
        Ok(payload(&self.buf, &self.joined, range))
    }

    /// Sends `COM_QUERY` and reads its answer up to the rows: `Some(columns)` for a result set
    /// (the column definitions read), `None` for OK.
    async fn query_start(&mut self, sql: &str) -> Result<Option<usize>, DbError> {
        if self.columns.is_some() {
            return Err(protocol("a query while a result set is open"));
        }
        self.seq = 0;
        let mut cmd = Vec::with_capacity(1 + sql.len());
        cmd.push(0x03);
        cmd.extend_from_slice(sql.as_bytes());
        self.send(&cmd).await?;
        let p = self.read_payload().await?;
        match p.first() {
            Some(0x00) => return Ok(None),
            Some(0xFF) => return Err(server_error(p)),
            Some(0xFB) => return Err(protocol("LOCAL INFILE request")),
            _ => {}
        }
        let n = lenenc(p, 0)
            .and_then(|(n, _)| usize::try_from(n).ok())
            .ok_or_else(|| protocol("column count"))?;
        for _ in 0..n {
            let p = self.read_payload().await?;
            if p.first() == Some(&0xFF) {
                return Err(server_error(p));
            }
        }
        // CLIENT_DEPRECATE_EOF is not asked for: an EOF packet ends the definitions.
        let p = self.read_payload().await?;
        if !is_eof(p) {
            return Err(protocol("no EOF after the column definitions"));
        }
        self.columns = Some(n);
        Ok(Some(n))
    }

    /// Runs a statement, its result set (if any) read and dropped.
    pub async fn exec(&mut self, sql: &str) -> Result<(), DbError> {
        if self.query_start(sql).await?.is_some() {
            while self.next_row().await?.is_some() {}
        }
        Ok(())
    }

    /// Sends a query whose rows [`RawConn::next_row`] then streams: the number of columns
    /// (0 for a statement without a result set).
    pub async fn query(&mut self, sql: &str) -> Result<usize, DbError> {
        Ok(self.query_start(sql).await?.unwrap_or(0))
    }

    /// The next row of the open result set; `None` at its end (the connection can then run
    /// the next query).
    pub async fn next_row(&mut self) -> Result<Option<RawRow<'_>>, DbError> {
        let Some(n) = self.columns else {
            return Ok(None);
        };
        let range = self.read_packet().await?;
        let p = payload(&self.buf, &self.joined, range);
        if is_eof(p) {
            self.columns = None;
            // SERVER_MORE_RESULTS_EXISTS is never set: no multi-statements, no CALL.
            return Ok(None);
        }
        if p.first() == Some(&0xFF) {
            self.columns = None;
            return Err(server_error(p));
        }
        if !parse_row(p, n, &mut self.spans) {
            self.columns = None;
            return Err(protocol("a row that does not hold its columns"));
        }
        Ok(Some(RawRow {
            payload: p,
            spans: &self.spans,
        }))
    }

    /// `COM_QUIT`, then the socket is closed.
    pub async fn disconnect(mut self) {
        self.seq = 0;
        let _ = self.send(&[0x01]).await;
        let _ = self.stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encoded_integers() {
        // (bytes, (value, bytes taken))
        type Case = (&'static [u8], Option<(u64, usize)>);
        let cases: &[Case] = &[
            (&[0x00], Some((0, 1))),
            (&[0xFA], Some((250, 1))),
            (&[0xFC, 0x01, 0x02], Some((0x0201, 3))),
            (&[0xFC, 0x01], None),
            (&[0xFD, 1, 2, 3], Some((0x030201, 4))),
            (
                &[0xFE, 1, 0, 0, 0, 0, 0, 0, 1],
                Some((0x0100_0000_0000_0001, 9)),
            ),
            (&[0xFB], None),
            (&[0xFF], None),
            (&[], None),
        ];
        for (p, want) in cases {
            assert_eq!(lenenc(p, 0), *want, "{p:?}");
        }
    }

    #[test]
    fn rows_split_into_values_and_nulls() {
        let mut long = vec![0xFC, 0x2C, 0x01];
        long.extend(std::iter::repeat_n(b'x', 300));
        // (payload, columns, values; None = the row is refused)
        type Case = (Vec<u8>, usize, Option<Vec<Option<Vec<u8>>>>);
        let cases: Vec<Case> = vec![
            (
                b"\x011\x03abc".to_vec(),
                2,
                Some(vec![Some(b"1".to_vec()), Some(b"abc".to_vec())]),
            ),
            (b"\xFB\x00".to_vec(), 2, Some(vec![None, Some(Vec::new())])),
            (long.clone(), 1, Some(vec![Some(vec![b'x'; 300])])),
            // A value longer than the packet, a missing column, a byte left over.
            (b"\x05ab".to_vec(), 1, None),
            (b"\x011".to_vec(), 2, None),
            (b"\x011\x00".to_vec(), 1, None),
            (Vec::new(), 0, Some(Vec::new())),
        ];
        for (p, n, want) in cases {
            let mut spans = Vec::new();
            let ok = parse_row(&p, n, &mut spans);
            match want {
                None => assert!(!ok, "{p:?} accepted"),
                Some(values) => {
                    assert!(ok, "{p:?} refused");
                    let row = RawRow {
                        payload: &p,
                        spans: &spans,
                    };
                    let got: Vec<Option<Vec<u8>>> = (0..row.len())
                        .map(|i| row.get(i).map(<[u8]>::to_vec))
                        .collect();
                    assert_eq!(got, values, "{p:?}");
                }
            }
        }
    }

    #[test]
    fn eof_and_error_packets() {
        assert!(is_eof(&[0xFE, 0, 0, 2, 0]));
        assert!(
            !is_eof(&[0xFE, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            "a row of a 2^24-byte value"
        );
        assert!(!is_eof(&[0x00]));
        let e = server_error(b"\xFF\x15\x04#28000Access denied");
        match e {
            DbError::Server(s) => {
                assert_eq!(
                    (s.code, s.state.as_str(), s.message.as_str()),
                    (1045, "28000", "Access denied")
                );
            }
            other => panic!("{other:?}"),
        }
        match server_error(b"\xFF\x10\x04Too many connections") {
            DbError::Server(s) => {
                assert_eq!((s.code, s.message.as_str()), (1040, "Too many connections"))
            }
            other => panic!("{other:?}"),
        }
    }
}
