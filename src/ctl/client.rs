//! The gRPC connection from dmctl to dm-master (`pb.Master`): one blocking call per command,
//! and the master addresses a `--master-addr` value names.
//!
//! `--master-addr` is DM's: one `host:port` or a comma-separated list, each optionally written
//! as a URL (`http://` / `https://` are dropped, as DM's `UnwrapScheme` does; the connection is
//! plain gRPC either way), an empty host meaning this machine (`:8261`). A list is resolved to
//! the first address that accepts a connection ([`resolve`]); an unreachable master is reported
//! in DM's words ([`ClientError::Connect`]: `can't connect to …`, workaround `Please check your
//! network connection.`). Called by the dmctl commands; the connection itself comes from
//! [`crate::rpc`]. It never retries a call and never prints (callers print the error).

use std::future::Future;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use tonic::transport::Channel;

use crate::pb::master_client::MasterClient;

/// How long dmctl waits for one master address to accept a connection (DM's dial timeout).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// DM's complaint when no master address is given (flag empty or absent, `DM_MASTER_ADDR` unset).
pub const NO_MASTER_ADDR: &str = "--master-addr not provided, this parameter is required when interacting with the dm-master, you can also use environment variable 'DM_MASTER_ADDR' to specify the value. Use `dmctl --help` to see more help messages";

/// A call to the master failed: unreachable, timed out, or the master answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// DM's `ErrCtlGRPCCreateConn` (48001), `addr` as the user wrote it.
    #[error(
        "[code=48001:class=dmctl:scope=internal:level=high], Message: can't connect to {addr}, RawCause: {why}, Workaround: Please check your network connection."
    )]
    Connect { addr: String, why: String },
    #[error("master {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("master {addr} returned an error: {status}")]
    Status { addr: String, status: String },
    #[error("can not start the async runtime: {0}")]
    Runtime(String),
}

/// The addresses of a `--master-addr` value, each `host:port` (scheme dropped, an empty host
/// made 127.0.0.1); `Err` in DM's words when one is not `host:port`.
pub fn endpoints(raw: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for ep in raw.split(',') {
        let ep = ep.trim();
        let bare = ep
            .strip_prefix("http://")
            .or_else(|| ep.strip_prefix("https://"))
            .unwrap_or(ep);
        let Some((host, port)) = bare.rsplit_once(':') else {
            return Err(format!("address {bare}: missing port in address"));
        };
        let bracketed = host.starts_with('[') && host.ends_with(']');
        if host.contains(':') && !bracketed {
            return Err(format!("address {bare}: too many colons in address"));
        }
        if port.parse::<u16>().is_err() {
            return Err(format!("address {bare}: invalid port {port:?}"));
        }
        let host = if host.is_empty() { "127.0.0.1" } else { host };
        out.push(format!("{host}:{port}"));
    }
    Ok(out)
}

/// Whether something accepts a TCP connection at `addr` within [`DIAL_TIMEOUT`].
fn dial(addr: &str) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs().map_err(|e| e.to_string())?.collect();
    let mut last = format!("address {addr}: no such host");
    for a in addrs {
        match TcpStream::connect_timeout(&a, DIAL_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The one master address to use for the `--master-addr` value `raw`. A plain `host:port` is
/// taken as it is unless `probe`; a list, a URL or `:port` (and anything when `probe`) is tried
/// address by address, and the first that accepts a connection wins.
pub fn resolve(raw: &str, probe: bool) -> Result<String, ResolveError> {
    let eps = endpoints(raw).map_err(|why| ResolveError::Invalid {
        addr: raw.to_string(),
        why,
    })?;
    if !probe && eps.len() == 1 && eps[0] == raw {
        return Ok(eps[0].clone());
    }
    let mut why = String::new();
    for ep in &eps {
        match dial(ep) {
            Ok(()) => return Ok(ep.clone()),
            Err(e) => why = e,
        }
    }
    Err(ResolveError::Unreachable(ClientError::Connect {
        addr: raw.to_string(),
        why,
    }))
}

/// Why [`resolve`] found no master.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The value is not a list of `host:port` (DM: `specify master addr …`).
    #[error("specify master addr {addr}: {why}")]
    Invalid { addr: String, why: String },
    /// No address of the list accepts a connection.
    #[error("{0}")]
    Unreachable(ClientError),
}

/// Connects to `addr` and runs one RPC, blocking until it ends or `timeout` passes.
pub fn call<T, F, Fut>(addr: &str, timeout: Duration, f: F) -> Result<T, ClientError>
where
    F: FnOnce(MasterClient<Channel>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Runtime(e.to_string()))?;
    rt.block_on(async {
        let channel = crate::rpc::connect(addr, crate::rpc::CONNECT_TIMEOUT, timeout)
            .await
            .map_err(|e| ClientError::Connect {
                addr: addr.into(),
                why: e.why().to_string(),
            })?;
        match tokio::time::timeout(timeout, f(MasterClient::new(channel))).await {
            Err(_) => Err(ClientError::Timeout {
                addr: addr.into(),
                timeout,
            }),
            Ok(Err(status)) => Err(ClientError::Status {
                addr: addr.into(),
                status: status.message().to_string(),
            }),
            Ok(Ok(resp)) => Ok(resp.into_inner()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_addr_values_are_read_as_dm_reads_them() {
        let ok: &[(&str, &[&str])] = &[
            ("127.0.0.1:8261", &["127.0.0.1:8261"]),
            (
                "127.0.0.1:8261,127.0.0.1:1234",
                &["127.0.0.1:8261", "127.0.0.1:1234"],
            ),
            (
                "http://127.0.0.1:1234,127.0.0.1:4322,https://127.0.0.1:8261",
                &["127.0.0.1:1234", "127.0.0.1:4322", "127.0.0.1:8261"],
            ),
            (":8261", &["127.0.0.1:8261"]),
            ("[::1]:8261", &["[::1]:8261"]),
            ("m.example:8261", &["m.example:8261"]),
        ];
        for (raw, want) in ok {
            assert_eq!(endpoints(raw).unwrap(), *want, "{raw}");
        }
        let bad = [
            ("127.0.0.1", "missing port in address"),
            ("a:1,b", "address b: missing port in address"),
            ("::1:8261", "too many colons"),
            ("h:port", "invalid port"),
            ("", "missing port"),
        ];
        for (raw, want) in bad {
            let e = endpoints(raw).unwrap_err();
            assert!(e.contains(want), "{raw}: {e}");
        }
    }

    #[test]
    fn a_plain_address_is_not_dialled_and_a_dead_list_names_what_was_given() {
        assert_eq!(resolve("127.0.0.1:1", false).unwrap(), "127.0.0.1:1");
        let e = resolve("https://127.0.0.1:1,127.0.0.1:1", false).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("[code=48001:class=dmctl:scope=internal:level=high], Message: can't connect to https://127.0.0.1:1,127.0.0.1:1, RawCause: "),
            "{text}"
        );
        assert!(
            text.ends_with(", Workaround: Please check your network connection."),
            "{text}"
        );
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let live = l.local_addr().unwrap().to_string();
        let list = format!("http://127.0.0.1:1,{live}");
        assert_eq!(resolve(&list, false).unwrap(), live);
        assert!(matches!(
            resolve("nope", true),
            Err(ResolveError::Invalid { .. })
        ));
    }
}
