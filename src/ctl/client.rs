//! The gRPC connection from dmctl to dm-master (`pb.Master`): one blocking call per command.
//!
//! Called by the dmctl commands; the connection itself comes from [`crate::rpc`]. It never
//! retries and never prints (callers print the error).

use std::future::Future;
use std::time::Duration;

use tonic::transport::Channel;

use crate::pb::master_client::MasterClient;

/// A call to the master failed: unreachable, timed out, or the master answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("can not connect to master {addr}: {why}")]
    Connect { addr: String, why: String },
    #[error("master {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("master {addr} returned an error: {status}")]
    Status { addr: String, status: String },
    #[error("can not start the async runtime: {0}")]
    Runtime(String),
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
