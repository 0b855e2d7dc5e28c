//! Where the sync unit's binlog events come from: the [`BinlogSource`] seam.
//!
//! [`RemoteSource`] reads the upstream over the replication protocol; the relay log's
//! [`crate::relay::reader::LocalSource`] is the other implementation (the unit picks it when
//! the source's relay holds its position: `binlogType: local`). It opens the stream with a connect
//! timeout, asks MariaDB for a heartbeat every [`HEARTBEAT`] (`@master_heartbeat_period`),
//! and turns a connection that stays silent past [`READ_DEADLINE`] — no event, no heartbeat —
//! into a retryable error, so a half-open upstream pauses and auto-resumes the task instead
//! of leaving it "Running" forever. Events come back decompressed; decoding (and the table
//! map cache) is the unit's.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use mysql_async::binlog::events::Event;
use mysql_async::{BinlogStream, Opts};
use tokio::time::Instant;

use crate::config::CONNECT_TIMEOUT;
use crate::worker::error::{UnitError, code};

/// How often the upstream sends a heartbeat on an idle stream.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A stream silent this long (no event, no heartbeat) is broken.
pub const READ_DEADLINE: Duration = Duration::from_secs(15);

/// What [`BinlogSource::next`] yields.
pub enum Next {
    Event(Box<Event>),
    /// Nothing arrived within the caller's wait (the stream is alive).
    Quiet,
}

/// A boxed future, as the seam's methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stream of binlog events.
pub trait BinlogSource: Send {
    /// The next event, or [`Next::Quiet`] when none came within `wait`; an error when the
    /// stream broke or went silent past its read deadline.
    fn next(&mut self, wait: Duration) -> BoxFuture<'_, Result<Next, UnitError>>;
}

pub use crate::binlog::StartAt;

/// The upstream's binlog over the replication protocol.
pub struct RemoteSource {
    stream: BinlogStream,
    last_seen: Instant,
    /// Events arrived on the fast path since `last_seen` was set.
    fresh: bool,
    deadline: Duration,
}

fn up_err(what: &str, e: &mysql_async::Error) -> UnitError {
    let mut u = UnitError::from_mysql("upstream", what.to_string(), e);
    u.code = code::BINLOG_READ;
    u
}

impl RemoteSource {
    /// Opens the stream as replica `server_id`, with [`CONNECT_TIMEOUT`], [`HEARTBEAT`] and
    /// [`READ_DEADLINE`].
    pub async fn open(opts: Opts, server_id: u32, at: &StartAt) -> Result<RemoteSource, UnitError> {
        Self::open_with(opts, server_id, at, HEARTBEAT, READ_DEADLINE).await
    }

    /// [`RemoteSource::open`] with explicit heartbeat period and read deadline.
    pub async fn open_with(
        opts: Opts,
        server_id: u32,
        at: &StartAt,
        heartbeat: Duration,
        deadline: Duration,
    ) -> Result<RemoteSource, UnitError> {
        let open = crate::binlog::open_stream(opts, server_id, at, Some(heartbeat), false);
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(up_err("open the upstream binlog stream", &e)),
            Err(_) => {
                return Err(UnitError::new(
                    code::BINLOG_READ,
                    "upstream",
                    format!(
                        "open the upstream binlog stream: no answer within {CONNECT_TIMEOUT:?}"
                    ),
                )
                .retryable(true));
            }
        };
        Ok(RemoteSource {
            stream,
            last_seen: Instant::now(),
            fresh: false,
            deadline,
        })
    }
}

impl BinlogSource for RemoteSource {
    fn next(&mut self, wait: Duration) -> BoxFuture<'_, Result<Next, UnitError>> {
        Box::pin(async move {
            // Fast path: an event already buffered needs no timer and no clock (a busy stream
            // is alive by definition; `last_seen` is refreshed when the stream next waits).
            let ready = match futures_util::FutureExt::now_or_never(self.stream.next()) {
                Some(r) => {
                    self.fresh = true;
                    Some(r)
                }
                None => {
                    if std::mem::take(&mut self.fresh) {
                        self.last_seen = Instant::now();
                    }
                    let until = (Instant::now() + wait).min(self.last_seen + self.deadline);
                    match tokio::time::timeout_at(until, self.stream.next()).await {
                        Ok(r) => {
                            self.last_seen = Instant::now();
                            Some(r)
                        }
                        Err(_) => None,
                    }
                }
            };
            match ready {
                Some(Some(Ok(ev))) => {
                    let ev = crate::binlog::compress::uncompress(ev).map_err(|e| {
                        UnitError::new(code::BINLOG_READ, "upstream", "decompress a binlog event")
                            .cause(e)
                    })?;
                    Ok(Next::Event(Box::new(ev)))
                }
                Some(Some(Err(e))) => Err(up_err("read the upstream binlog", &e)),
                Some(None) => Err(UnitError::new(
                    code::BINLOG_READ,
                    "upstream",
                    "the upstream closed the binlog stream",
                )
                .retryable(true)),
                None if self.last_seen.elapsed() >= self.deadline => Err(UnitError::new(
                    code::BINLOG_READ,
                    "upstream",
                    format!(
                        "no binlog event and no heartbeat from the upstream for {:?}: the connection is broken",
                        self.deadline
                    ),
                )
                .retryable(true)),
                None => Ok(Next::Quiet),
            }
        })
    }
}
