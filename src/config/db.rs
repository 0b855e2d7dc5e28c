//! Database connection settings (DM's `DBConfig` and its `security` block) and the one way to
//! turn them into a MySQL connection.
//!
//! Every connection dm-rs opens to an upstream or the downstream is built here:
//! [`DbConfig::mysql_opts`] gives mysql_async's options (password decrypted, never logged; TCP
//! only, keepalive, `TCP_NODELAY`, TLS from `security`), and [`DbConfig::connect`] opens one
//! connection within [`CONNECT_TIMEOUT`] (mysql_async itself has no connect timeout: a server
//! that accepts TCP and never answers would hang the caller). Callers: the master's precheck,
//! the checker, the worker's units.
//!
//! TLS follows DM: `ssl-ca` is the CA the server's certificate must chain to (only that CA is
//! trusted, and the certificate must name the host dm-rs connects to); `ssl-cert` + `ssl-key`
//! are the client's identity (for users created `REQUIRE X509`); a `security` block with none of
//! the three is no TLS. The `ssl-*-bytes` keys hold the PEM itself instead of a path. Files are
//! read when a connection is opened, so they must exist on the machine that connects (the master
//! for the precheck, the worker for the task); [`DbConfig::tls_check`] reports a missing or
//! unreadable file naming the key and the file.
//!
//! Neither `Debug` nor any error here prints a password or a private key.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::{ClientIdentity, Conn, Opts, OptsBuilder, SslOpts};
use serde::{Deserialize, Serialize};

use super::error::{ConfigError, code};
use super::yaml as y;
use crate::password;

/// How long [`DbConfig::connect`] waits for a connection (TCP, TLS handshake and login).
/// DM's own is 30 s (`DefaultDBTimeout`, which also bounds reads); 10 s is plenty on a LAN and
/// keeps a precheck against an unreachable server short.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle connection waits before TCP keepalive probes start: a downstream or
/// upstream that vanished without a FIN is noticed instead of hanging a read for hours.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Downstream or upstream connection settings (DM's `DBConfig`).
///
/// `Debug` prints the password as `******`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DbConfig {
    #[serde(deserialize_with = "y::string")]
    pub host: String,
    pub port: u16,
    #[serde(deserialize_with = "y::string")]
    pub user: String,
    /// As written (plaintext or DM ciphertext), after `${ENV}` resolution.
    #[serde(deserialize_with = "y::string")]
    pub password: String,
    /// Deprecated in DM; kept so that files using it still load.
    pub max_allowed_packet: Option<i64>,
    #[serde(deserialize_with = "super::task::string_map")]
    pub session: std::collections::BTreeMap<String, String>,
    pub security: Option<Security>,
}

impl fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &password::MASK)
            .field("max_allowed_packet", &self.max_allowed_packet)
            .field("session", &self.session)
            .field("security", &self.security)
            .finish()
    }
}

/// TLS settings of a connection (DM's `security` block).
///
/// `Debug` prints `ssl-key-bytes` (a private key) as `******`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Security {
    /// Path of the CA certificate(s) (PEM) the server's certificate must chain to.
    #[serde(deserialize_with = "y::string")]
    pub ssl_ca: String,
    /// Path of the client certificate (PEM), sent when the server asks for one.
    #[serde(deserialize_with = "y::string")]
    pub ssl_cert: String,
    /// Path of the client certificate's private key (PEM).
    #[serde(deserialize_with = "y::string")]
    pub ssl_key: String,
    /// DM checks the server certificate's common name against this list; dm-rs cannot yet,
    /// so a non-empty list is refused by [`super::TaskConfig::unsupported`] and
    /// [`super::SourceConfig::unsupported`].
    #[serde(deserialize_with = "y::strings")]
    pub cert_allowed_cn: Vec<String>,
    /// The CA as PEM text, instead of `ssl-ca`.
    #[serde(deserialize_with = "y::string")]
    pub ssl_ca_bytes: String,
    /// The private key as PEM text, instead of `ssl-key`.
    #[serde(deserialize_with = "y::string")]
    pub ssl_key_bytes: String,
    /// The client certificate as PEM text, instead of `ssl-cert`.
    #[serde(deserialize_with = "y::string")]
    pub ssl_cert_bytes: String,
    /// The CA as base64 of the PEM text (DM v8); folded into `ssl-ca-bytes` by
    /// [`Security::fold_base64`].
    #[serde(
        deserialize_with = "y::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub ssl_ca_base64: String,
    /// The private key as base64 of the PEM text; folded into `ssl-key-bytes`.
    #[serde(
        deserialize_with = "y::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub ssl_key_base64: String,
    /// The client certificate as base64 of the PEM text; folded into `ssl-cert-bytes`.
    #[serde(
        deserialize_with = "y::string",
        skip_serializing_if = "String::is_empty"
    )]
    pub ssl_cert_base64: String,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key_bytes: &str = if self.ssl_key_bytes.is_empty() {
            ""
        } else {
            password::MASK
        };
        f.debug_struct("Security")
            .field("ssl_ca", &self.ssl_ca)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .field("cert_allowed_cn", &self.cert_allowed_cn)
            .field("ssl_ca_bytes", &self.ssl_ca_bytes.len())
            .field("ssl_key_bytes", &key_bytes)
            .field("ssl_cert_bytes", &self.ssl_cert_bytes.len())
            .finish()
    }
}

/// One TLS input: the inline PEM if given, else the file.
#[derive(Debug, Clone, Copy)]
struct TlsInput<'a> {
    /// The YAML key of the path (`ssl-ca`, `ssl-cert`, `ssl-key`).
    key: &'static str,
    path: &'a str,
    bytes: &'a str,
}

impl TlsInput<'_> {
    fn given(&self) -> bool {
        !self.path.is_empty() || !self.bytes.is_empty()
    }

    /// mysql_async's `PathOrBuf` (which it does not export by name).
    fn source<T: From<PathBuf> + From<Vec<u8>>>(&self) -> T {
        if self.bytes.is_empty() {
            PathBuf::from(self.path).into()
        } else {
            self.bytes.as_bytes().to_vec().into()
        }
    }
}

impl Security {
    /// DM v8's `ssl-*-base64` keys: each decoded into its `ssl-*-bytes` (an inline PEM given
    /// both ways must agree). A value that is not base64 is an error naming the key.
    pub fn fold_base64(&mut self, at: &str) -> Result<(), ConfigError> {
        use base64::Engine;
        for (key, b64, bytes) in [
            (
                "ssl-ca-base64",
                &mut self.ssl_ca_base64,
                &mut self.ssl_ca_bytes,
            ),
            (
                "ssl-key-base64",
                &mut self.ssl_key_base64,
                &mut self.ssl_key_bytes,
            ),
            (
                "ssl-cert-base64",
                &mut self.ssl_cert_base64,
                &mut self.ssl_cert_bytes,
            ),
        ] {
            if b64.trim().is_empty() {
                b64.clear();
                continue;
            }
            let raw: String = b64.split_whitespace().collect();
            let pem = base64::engine::general_purpose::STANDARD
                .decode(raw.as_bytes())
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or_else(|| {
                    ConfigError::new(
                        code::TLS_CONFIG,
                        format!("{at}.{key}: not base64 of a PEM text"),
                    )
                })?;
            if !bytes.is_empty() && bytes.trim() != pem.trim() {
                return Err(ConfigError::new(
                    code::TLS_CONFIG,
                    format!(
                        "{at}.{key} and {} are both set and differ; keep one",
                        key.replace("-base64", "-bytes")
                    ),
                ));
            }
            *bytes = pem;
            b64.clear();
        }
        Ok(())
    }

    fn inputs(&self) -> [TlsInput<'_>; 3] {
        [
            TlsInput {
                key: "ssl-ca",
                path: &self.ssl_ca,
                bytes: &self.ssl_ca_bytes,
            },
            TlsInput {
                key: "ssl-cert",
                path: &self.ssl_cert,
                bytes: &self.ssl_cert_bytes,
            },
            TlsInput {
                key: "ssl-key",
                path: &self.ssl_key,
                bytes: &self.ssl_key_bytes,
            },
        ]
    }

    /// True when the block asks for TLS: any of CA, certificate or key is given (DM: a block
    /// with none of them is no TLS).
    pub fn enabled(&self) -> bool {
        self.inputs().iter().any(TlsInput::given)
    }

    /// The settings that need no file system: a certificate without its key (or a key without
    /// its certificate) is an error naming both keys. `at` is the block's YAML path, e.g.
    /// `target-database.security`.
    pub fn check_pairs(&self, at: &str) -> Result<(), ConfigError> {
        let [_, cert, key] = self.inputs();
        if cert.given() != key.given() {
            let (has, lacks) = if cert.given() {
                ("ssl-cert", "ssl-key")
            } else {
                ("ssl-key", "ssl-cert")
            };
            return Err(ConfigError::new(
                code::TLS_CONFIG,
                format!(
                    "{at}: {has} is set but {lacks} is not; a client certificate needs both (or remove {has})"
                ),
            ));
        }
        Ok(())
    }

    /// Reads every file the block names and fails on the first that is missing, unreadable or
    /// empty, naming the key and the file. Inline `ssl-*-bytes` values need no file.
    pub fn check_files(&self, at: &str) -> Result<(), ConfigError> {
        self.check_pairs(at)?;
        for input in self.inputs() {
            if !input.bytes.is_empty() || input.path.is_empty() {
                continue;
            }
            let problem = match std::fs::read(input.path) {
                Ok(data) if data.iter().all(u8::is_ascii_whitespace) => "the file is empty".into(),
                Ok(_) => continue,
                Err(e) => e.to_string(),
            };
            return Err(ConfigError::new(
                code::TLS_CONFIG,
                format!(
                    "{at}.{}: cannot read {:?}: {problem}",
                    input.key, input.path
                ),
            ));
        }
        Ok(())
    }

    /// mysql_async's TLS options for this block, or `None` when TLS is not asked for.
    pub fn ssl_opts(&self) -> Option<SslOpts> {
        if !self.enabled() {
            return None;
        }
        let [ca, cert, key] = self.inputs();
        let mut ssl = SslOpts::default();
        if ca.given() {
            // Only the given CA is trusted (as with DM's Go TLS config: RootCAs replaces the
            // system pool), and the server must still prove it is the host we dialled.
            ssl = ssl
                .with_root_certs(vec![ca.source()])
                .with_disable_built_in_roots(true);
        }
        if cert.given() && key.given() {
            ssl = ssl.with_client_identity(Some(ClientIdentity::new(cert.source(), key.source())));
        }
        Some(ssl)
    }
}

/// Why [`DbConfig::connect`] could not open a connection. Never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The settings cannot work (a TLS file is missing, a certificate lacks its key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server refused or the network failed (including the TLS handshake).
    #[error("connect to {addr}: {source}")]
    Sql {
        addr: String,
        #[source]
        source: mysql_async::Error,
    },
    /// No connection within [`CONNECT_TIMEOUT`].
    #[error("connect to {addr}: no connection within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
}

impl DbConfig {
    /// The password in clear text (DM's decrypt-or-plaintext). Never log the result.
    pub fn plain_password(&self) -> String {
        password::decrypt_or_plaintext(&self.password)
    }

    /// Replaces the password and an inline private key (`ssl-key-bytes`) with `******`, for
    /// configs shown to people (get-config).
    pub fn mask_secrets(&mut self) {
        self.password = password::MASK.into();
        if let Some(s) = self.security.as_mut()
            && !s.ssl_key_bytes.is_empty()
        {
            s.ssl_key_bytes = password::MASK.into();
        }
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// True when connections use TLS (a `security` block with a CA, certificate or key).
    pub fn uses_tls(&self) -> bool {
        self.security.as_ref().is_some_and(Security::enabled)
    }

    /// mysql_async options for this database: host, port, user, the decrypted password, TCP
    /// only (never a local socket, even on localhost), TCP keepalive ([`TCP_KEEPALIVE`]),
    /// `TCP_NODELAY`, TLS from `security`, and `init` run on every new connection.
    ///
    /// Infallible: TLS files are read by mysql_async when a connection is opened. Call
    /// [`DbConfig::tls_check`] first (or use [`DbConfig::connect`], which does) for an error
    /// that names the key and the file.
    pub fn mysql_opts(&self, init: Vec<String>) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.plain_password()))
            .prefer_socket(false)
            .tcp_keepalive(Some(TCP_KEEPALIVE))
            .tcp_nodelay(true)
            .ssl_opts(self.security.as_ref().and_then(Security::ssl_opts))
            .init(init)
            .into()
    }

    /// Checks the TLS settings that [`DbConfig::mysql_opts`] cannot: every file named in
    /// `security` is readable. `at` is the YAML path of this config for the message, e.g.
    /// `target-database` or `from`.
    pub fn tls_check(&self, at: &str) -> Result<(), ConfigError> {
        match &self.security {
            Some(s) if s.enabled() => s.check_files(&format!("{at}.security")),
            _ => Ok(()),
        }
    }

    /// Opens one connection within [`CONNECT_TIMEOUT`], after [`DbConfig::tls_check`]. `at`
    /// names this config in errors (`target-database`, `from`).
    pub async fn connect(&self, at: &str, init: Vec<String>) -> Result<Conn, ConnectError> {
        self.tls_check(at)?;
        connect_opts(self.mysql_opts(init)).await
    }
}

/// Opens one connection with `opts` within [`CONNECT_TIMEOUT`]. For callers that already hold
/// options (a test's URL, the checker); prefer [`DbConfig::connect`].
pub async fn connect_opts(opts: Opts) -> Result<Conn, ConnectError> {
    let addr = format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port());
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(ConnectError::Sql { addr, source }),
        Err(_) => Err(ConnectError::Timeout {
            addr,
            timeout: CONNECT_TIMEOUT,
        }),
    }
}

/// Kills the running statement of connection `id` with `KILL QUERY` on a connection of its own
/// (best effort: connect, the kill and the disconnect are each bounded).
pub async fn kill_query(opts: Opts, id: u32) {
    use mysql_async::prelude::Queryable;
    if let Ok(mut c) = connect_opts(opts).await {
        let bound = Duration::from_secs(30);
        let _ = tokio::time::timeout(bound, c.query_drop(format!("KILL QUERY {id}"))).await;
        let _ = tokio::time::timeout(bound, c.disconnect()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(security: Option<Security>) -> DbConfig {
        DbConfig {
            host: "127.0.0.1".into(),
            port: 3306,
            user: "u".into(),
            password: "hunter2-secret".into(),
            security,
            ..DbConfig::default()
        }
    }

    #[test]
    fn debug_hides_password_and_key() {
        let s = Security {
            ssl_key_bytes: "-----BEGIN PRIVATE KEY-----\nsecretkeymaterial\n".into(),
            ..Security::default()
        };
        let out = format!("{:?} {:#?}", db(Some(s.clone())), db(Some(s)));
        assert!(!out.contains("hunter2-secret"), "{out}");
        assert!(!out.contains("secretkeymaterial"), "{out}");
        assert!(out.contains("******"), "{out}");
    }

    #[test]
    fn options_are_tcp_with_keepalive_nodelay_and_no_tls_by_default() {
        let o = db(None).mysql_opts(vec!["SET SESSION x = 1".into()]);
        assert_eq!(o.ip_or_hostname(), "127.0.0.1");
        assert_eq!(o.tcp_port(), 3306);
        assert_eq!(o.user(), Some("u"));
        assert_eq!(o.pass(), Some("hunter2-secret"));
        assert!(!o.prefer_socket());
        assert!(o.tcp_nodelay());
        assert_eq!(o.tcp_keepalive(), Some(TCP_KEEPALIVE));
        assert!(o.ssl_opts().is_none());
        assert_eq!(o.init(), ["SET SESSION x = 1".to_string()]);
        // An empty security block is no TLS, as in DM.
        assert!(
            db(Some(Security::default()))
                .mysql_opts(vec![])
                .ssl_opts()
                .is_none()
        );
    }

    #[test]
    fn encrypted_password_is_decrypted() {
        let mut d = db(None);
        d.password = password::encrypt("s3cret").unwrap_or_default();
        assert_eq!(d.mysql_opts(vec![]).pass(), Some("s3cret"));
    }

    #[test]
    fn ca_only_verifies_the_server_with_that_ca() {
        let s = Security {
            ssl_ca: "/etc/dm/ca.pem".into(),
            ..Security::default()
        };
        let o = db(Some(s)).mysql_opts(vec![]);
        let ssl = o.ssl_opts().cloned().unwrap_or_default();
        let roots = format!("{:?}", ssl.root_certs());
        assert!(
            roots.contains("Path(\"/etc/dm/ca.pem\")") && ssl.root_certs().len() == 1,
            "{roots}"
        );
        assert!(ssl.disable_built_in_roots());
        assert!(!ssl.accept_invalid_certs());
        assert!(!ssl.skip_domain_validation());
        assert!(ssl.client_identity().is_none());
    }

    #[test]
    fn cert_and_key_are_the_client_identity_inline_bytes_win() {
        let s = Security {
            ssl_cert: "/c.pem".into(),
            ssl_key: "/k.pem".into(),
            ssl_key_bytes: "KEY".into(),
            ..Security::default()
        };
        let o = db(Some(s)).mysql_opts(vec![]);
        let ssl = o.ssl_opts().cloned().unwrap_or_default();
        let id = ssl.client_identity().cloned();
        assert!(id.is_some());
        if let Some(id) = id {
            let (cert, key) = (
                format!("{:?}", id.cert_chain()),
                format!("{:?}", id.priv_key()),
            );
            assert!(cert.contains("Path(\"/c.pem\")"), "{cert}");
            assert!(key.starts_with("Buf("), "{key}");
        }
        assert!(ssl.root_certs().is_empty());
        assert!(!ssl.disable_built_in_roots());
    }

    #[test]
    fn missing_file_names_key_and_file() {
        let s = Security {
            ssl_ca: "/nonexistent/dm-rs/ca.pem".into(),
            ..Security::default()
        };
        let e = db(Some(s)).tls_check("target-database");
        let msg = e.map(|_| String::new()).unwrap_or_else(|e| e.to_string());
        assert!(
            msg.contains("target-database.security.ssl-ca")
                && msg.contains("/nonexistent/dm-rs/ca.pem")
                && msg.contains(&format!("code={}", code::TLS_CONFIG)),
            "{msg}"
        );
    }

    #[test]
    fn cert_without_key_is_refused() {
        let s = Security {
            ssl_cert: "/c.pem".into(),
            ..Security::default()
        };
        let msg = s
            .check_pairs("from.security")
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            msg.contains("from.security: ssl-cert is set but ssl-key is not"),
            "{msg}"
        );
        assert!(Security::default().check_pairs("x").is_ok());
    }

    #[tokio::test]
    async fn connect_reports_tls_file_before_dialling() {
        let s = Security {
            ssl_key: "/nonexistent/k.pem".into(),
            ssl_cert: "/nonexistent/c.pem".into(),
            ..Security::default()
        };
        // Port 9 (discard) on loopback: nothing is dialled because the check fails first.
        let mut d = db(Some(s));
        d.port = 9;
        match d.connect("from", vec![]).await {
            Err(ConnectError::Config(e)) => {
                assert!(e.message.contains("from.security.ssl-cert"), "{e}")
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("connected to port 9"),
        }
    }
}
