//! The reconcile loop's admin endpoint: `GET /metrics` (Prometheus text format) and
//! `GET /healthz`, served by hand on tokio's `TcpListener` (HTTP/1.0-style: one request per
//! connection).
//!
//! Called by [`super::watch`], which owns the [`Metrics`] and updates them after every round.
//! It answers only those two paths (404 otherwise, 405 for other methods), never reads a
//! request body, and never exposes anything but counters and task stage counts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::apply::CancelToken;
use super::model::ChangeClass;

/// Upper bounds (seconds) of the round duration histogram.
pub const DURATION_BUCKETS: &[f64] =
    &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("can not listen on admin address {addr}: {why}")]
    Bind { addr: String, why: String },
}

#[derive(Debug, Default)]
struct Inner {
    rounds: u64,
    errors: u64,
    drift: u64,
    transitions: BTreeMap<String, u64>,
    tasks: BTreeMap<String, u64>,
    bucket_counts: Vec<u64>,
    duration_sum: f64,
    duration_count: u64,
    running: bool,
    master_reachable: bool,
}

/// The loop's counters, shared with the admin server.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// The Prometheus label value of a change class ("online", "restart", …).
pub fn class_label(c: ChangeClass) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// A round ended after `secs`; `reached_master` says whether it could read the master.
    pub fn observe_round(&self, secs: f64, reached_master: bool) {
        self.with(|m| {
            m.rounds += 1;
            m.master_reachable = reached_master;
            if m.bucket_counts.len() != DURATION_BUCKETS.len() {
                m.bucket_counts = vec![0; DURATION_BUCKETS.len()];
            }
            for (i, b) in DURATION_BUCKETS.iter().enumerate() {
                if secs <= *b {
                    m.bucket_counts[i] += 1;
                }
            }
            m.duration_sum += secs;
            m.duration_count += 1;
        })
    }

    pub fn add_errors(&self, n: u64) {
        self.with(|m| m.errors += n)
    }

    pub fn add_drift(&self, n: u64) {
        self.with(|m| m.drift += n)
    }

    pub fn add_transition(&self, class: ChangeClass) {
        self.with(|m| *m.transitions.entry(class_label(class)).or_default() += 1)
    }

    /// How many tasks are in each stage now.
    pub fn set_tasks(&self, by_stage: BTreeMap<String, u64>) {
        self.with(|m| m.tasks = by_stage)
    }

    pub fn set_running(&self, running: bool) {
        self.with(|m| m.running = running)
    }

    /// 200 while the loop runs and its last round could reach the master.
    pub fn healthy(&self) -> bool {
        self.with(|m| m.running && m.master_reachable)
    }

    pub fn rounds(&self) -> u64 {
        self.with(|m| m.rounds)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.with(|m| {
            let mut o = String::new();
            o.push_str("# HELP dmrs_reconcile_duration_seconds How long a reconcile round took.\n");
            o.push_str("# TYPE dmrs_reconcile_duration_seconds histogram\n");
            for (i, b) in DURATION_BUCKETS.iter().enumerate() {
                let n = m.bucket_counts.get(i).copied().unwrap_or(0);
                o.push_str(&format!(
                    "dmrs_reconcile_duration_seconds_bucket{{le=\"{b}\"}} {n}\n"
                ));
            }
            o.push_str(&format!(
                "dmrs_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
                m.duration_count
            ));
            o.push_str(&format!(
                "dmrs_reconcile_duration_seconds_sum {}\n",
                m.duration_sum
            ));
            o.push_str(&format!(
                "dmrs_reconcile_duration_seconds_count {}\n",
                m.duration_count
            ));
            o.push_str("# HELP dmrs_reconcile_rounds_total Reconcile rounds run.\n");
            o.push_str("# TYPE dmrs_reconcile_rounds_total counter\n");
            o.push_str(&format!("dmrs_reconcile_rounds_total {}\n", m.rounds));
            o.push_str("# HELP dmrs_reconcile_errors_total Failed task applies and rounds that could not read the master.\n");
            o.push_str("# TYPE dmrs_reconcile_errors_total counter\n");
            o.push_str(&format!("dmrs_reconcile_errors_total {}\n", m.errors));
            o.push_str("# HELP dmrs_transitions_total Task transitions applied, by change class.\n");
            o.push_str("# TYPE dmrs_transitions_total counter\n");
            for (class, n) in &m.transitions {
                o.push_str(&format!("dmrs_transitions_total{{class=\"{class}\"}} {n}\n"));
            }
            o.push_str("# HELP dmrs_drift_detected_total Tasks found out of sync at a resync with no file change.\n");
            o.push_str("# TYPE dmrs_drift_detected_total counter\n");
            o.push_str(&format!("dmrs_drift_detected_total {}\n", m.drift));
            o.push_str("# HELP dmrs_tasks Tasks on the master by stage (at the last round).\n");
            o.push_str("# TYPE dmrs_tasks gauge\n");
            for (stage, n) in &m.tasks {
                o.push_str(&format!("dmrs_tasks{{stage=\"{stage}\"}} {n}\n"));
            }
            o
        })
    }
}

/// Binds the admin address.
pub async fn bind(addr: &str) -> Result<TcpListener, AdminError> {
    TcpListener::bind(addr).await.map_err(|e| AdminError::Bind {
        addr: addr.to_string(),
        why: e.to_string(),
    })
}

/// Serves until `stop` is cancelled.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, stop: CancelToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let m = metrics.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(10), handle(stream, m)).await;
                    });
                }
                Err(e) => {
                    tracing::warn!("admin endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// The response to a request line: status, content type, body.
pub fn respond(request_line: &str, metrics: &Metrics) -> (u16, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    const TEXT: &str = "text/plain; charset=utf-8";
    match (method, path) {
        ("GET", "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET", "/healthz") if metrics.healthy() => (200, TEXT, "ok\n".into()),
        ("GET", "/healthz") => (
            503,
            TEXT,
            "unhealthy: the last round could not reach the master\n".into(),
        ),
        ("GET", _) => (404, TEXT, "not found: try /metrics or /healthz\n".into()),
        _ => (405, TEXT, "method not allowed\n".into()),
    }
}

async fn handle(mut stream: TcpStream, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next().unwrap_or("");
    let (code, ctype, body) = respond(line, &metrics);
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let resp = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_answer_as_documented() {
        let m = Metrics::default();
        let cases = [
            ("GET /metrics HTTP/1.1", 200),
            ("GET /healthz HTTP/1.1", 503),
            ("GET /nope HTTP/1.1", 404),
            ("POST /metrics HTTP/1.1", 405),
            ("", 405),
        ];
        for (line, code) in cases {
            assert_eq!(respond(line, &m).0, code, "{line}");
        }
        m.set_running(true);
        m.observe_round(0.2, true);
        assert_eq!(respond("GET /healthz?x=1 HTTP/1.1", &m).0, 200);
        m.observe_round(0.2, false);
        assert_eq!(respond("GET /healthz HTTP/1.1", &m).0, 503);
        m.observe_round(0.2, true);
        m.set_running(false);
        assert_eq!(respond("GET /healthz HTTP/1.1", &m).0, 503);
    }

    #[test]
    fn metrics_render_in_prometheus_text() {
        let m = Metrics::default();
        m.observe_round(0.07, true);
        m.observe_round(3.0, true);
        m.add_errors(2);
        m.add_drift(1);
        m.add_transition(ChangeClass::Online);
        m.add_transition(ChangeClass::Online);
        m.add_transition(ChangeClass::Create);
        m.set_tasks(BTreeMap::from([
            ("Running".into(), 3),
            ("Paused".into(), 1),
        ]));
        let text = m.render();
        for want in [
            "dmrs_reconcile_duration_seconds_bucket{le=\"0.05\"} 0\n",
            "dmrs_reconcile_duration_seconds_bucket{le=\"0.1\"} 1\n",
            "dmrs_reconcile_duration_seconds_bucket{le=\"5\"} 2\n",
            "dmrs_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2\n",
            "dmrs_reconcile_duration_seconds_sum 3.07\n",
            "dmrs_reconcile_duration_seconds_count 2\n",
            "dmrs_reconcile_rounds_total 2\n",
            "dmrs_reconcile_errors_total 2\n",
            "dmrs_transitions_total{class=\"online\"} 2\n",
            "dmrs_transitions_total{class=\"create\"} 1\n",
            "dmrs_drift_detected_total 1\n",
            "dmrs_tasks{stage=\"Paused\"} 1\n",
            "dmrs_tasks{stage=\"Running\"} 3\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}
