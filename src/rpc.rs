//! gRPC plumbing shared by every binary: the one place that makes tonic connections, reads a
//! transport error, and turns a TCP listener into the stream tonic serves from.
//!
//! Called by dmctl ([`crate::ctl::client`]), the reconciler ([`crate::reconcile::live`]), the
//! master's pushes to its workers ([`crate::master::scheduler`]) and the worker's registration
//! ([`crate::worker`]); servers (master, worker) use [`incoming`]. Every connection has a
//! connect timeout and a per-request timeout, so no call can hang forever. Plain `http://`:
//! dm-rs has no TLS yet. This module never retries and never logs; callers decide.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// How long a connection attempt may take unless the caller says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The address is not a URL or `host:port`.
    #[error("invalid address {addr}: {why}")]
    BadAddress { addr: String, why: String },
    /// Nothing answered, or the connection was refused or timed out.
    #[error("can not connect to {addr}: {why}")]
    Connect { addr: String, why: String },
}

impl RpcError {
    /// The reason alone, without the address (callers that name the peer themselves).
    pub fn why(&self) -> &str {
        match self {
            RpcError::BadAddress { why, .. } | RpcError::Connect { why, .. } => why,
        }
    }
}

/// `host:port` → `http://host:port`; a URL stays as it is.
pub fn url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// The endpoint for `addr` with both timeouts set.
pub fn endpoint(
    addr: &str,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<Endpoint, RpcError> {
    Endpoint::from_shared(url(addr))
        .map(|e| e.connect_timeout(connect_timeout).timeout(request_timeout))
        .map_err(|e| RpcError::BadAddress {
            addr: addr.to_string(),
            why: e.to_string(),
        })
}

/// Connects now (fails fast when the peer is down).
pub async fn connect(
    addr: &str,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<Channel, RpcError> {
    endpoint(addr, connect_timeout, request_timeout)?
        .connect()
        .await
        .map_err(|e| RpcError::Connect {
            addr: addr.to_string(),
            why: cause_chain(&e),
        })
}

/// A channel that connects on first use (and reconnects after a failure): for peers that
/// come and go, such as workers.
pub fn connect_lazy(
    addr: &str,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<Channel, RpcError> {
    Ok(endpoint(addr, connect_timeout, request_timeout)?.connect_lazy())
}

/// The causes under a transport error, innermost last ("tcp connect error: Connection refused
/// (os error 111)"); the outermost "transport error" says nothing and is left out.
pub fn cause_chain(e: &tonic::transport::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// A listener's accepted connections (TCP_NODELAY set) as the stream tonic serves from.
pub fn incoming(
    l: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(l, |l| async move {
        let r = l.accept().await.map(|(s, _)| {
            // Only latency is at stake; a socket that refuses the option still works.
            let _ = s.set_nodelay(true);
            s
        });
        Some((r, l))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(url("127.0.0.1:8261"), "http://127.0.0.1:8261");
        assert_eq!(url("https://m:8261"), "https://m:8261");
    }

    #[tokio::test]
    async fn refused_connection_names_the_cause() {
        // A port that was just free: nothing listens there.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let e = connect(&addr, Duration::from_secs(2), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(e, RpcError::Connect { .. }), "{e}");
        assert!(!e.why().is_empty());
        assert!(e.to_string().contains(&addr), "{e}");
        assert!(matches!(
            endpoint("not a url\u{0}", CONNECT_TIMEOUT, CONNECT_TIMEOUT),
            Err(RpcError::BadAddress { .. })
        ));
    }
}
