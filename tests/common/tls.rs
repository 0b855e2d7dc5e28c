//! Throwaway TLS material for tests: a CA, a server certificate for `127.0.0.1` and
//! `localhost`, and a client certificate, all made in-process with rcgen (no `openssl` CLI).
//!
//! Start a TLS server with [`super::MariaDb::upstream_tls`] / [`super::MariaDb::downstream_tls`],
//! create its users `REQUIRE SSL` (or `REQUIRE X509` for a client certificate) with
//! [`TestCerts::create_user_sql`], and give the client [`TestCerts::security_ca_only`] or
//! [`TestCerts::security_with_client`] as the `DbConfig`'s `security`. The files live in a
//! temporary directory removed when the value is dropped (keep it alive as long as the server).

use std::path::PathBuf;

use dm_rs::config::Security;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files of one throwaway PKI.
pub struct TestCerts {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestCerts {
    /// A fresh CA (common name `dm-rs test CA`), a server certificate for 127.0.0.1 and
    /// localhost, and a client certificate (common name `dm-rs client`).
    pub fn generate() -> TestCerts {
        Self::generate_named("dm-rs test CA")
    }

    /// As [`TestCerts::generate`], with the CA's common name given (two calls make two
    /// unrelated CAs: a client trusting one must refuse a server of the other).
    pub fn generate_named(ca_name: &str) -> TestCerts {
        let dir = tempfile::Builder::new()
            .prefix("dmrs-tls-")
            .tempdir()
            .expect("temp dir for certificates");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
            let mut p = CertificateParams::new(names).expect("leaf params");
            p.distinguished_name.push(DnType::CommonName, cn);
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            p.extended_key_usages = vec![usage];
            p.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate().expect("leaf key");
            let cert = p.signed_by(&key, &issuer).expect("leaf certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key_pem) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            "127.0.0.1",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_pem, client_key_pem) = leaf(
            Vec::new(),
            "dm-rs client",
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let write = |name: &str, pem: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, pem).expect("write certificate file");
            p
        };
        TestCerts {
            ca: write("ca.pem", &ca_cert.pem()),
            server_cert: write("server-cert.pem", &server_pem),
            server_key: write("server-key.pem", &server_key_pem),
            client_cert: write("client-cert.pem", &client_pem),
            client_key: write("client-key.pem", &client_key_pem),
            dir,
        }
    }

    /// The server options for [`super::MariaDb::start_with_args`].
    pub fn server_args(&self) -> Vec<String> {
        vec![
            format!("--ssl-ca={}", self.ca.display()),
            format!("--ssl-cert={}", self.server_cert.display()),
            format!("--ssl-key={}", self.server_key.display()),
        ]
    }

    /// `security` with `ssl-ca` only: TLS, the server verified against this CA.
    pub fn security_ca_only(&self) -> Security {
        Security {
            ssl_ca: self.ca.display().to_string(),
            ..Security::default()
        }
    }

    /// `security` with `ssl-ca`, `ssl-cert` and `ssl-key`: TLS with a client certificate.
    pub fn security_with_client(&self) -> Security {
        Security {
            ssl_ca: self.ca.display().to_string(),
            ssl_cert: self.client_cert.display().to_string(),
            ssl_key: self.client_key.display().to_string(),
            ..Security::default()
        }
    }

    /// SQL creating `user`@`127.0.0.1` with `password` and all privileges, required to use TLS
    /// (`REQUIRE SSL`) or also to present a certificate of this CA (`REQUIRE X509`).
    pub fn create_user_sql(user: &str, password: &str, x509: bool) -> Vec<String> {
        let require = if x509 { "X509" } else { "SSL" };
        vec![
            format!(
                "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}' REQUIRE {require}"
            ),
            format!("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1'"),
        ]
    }
}
