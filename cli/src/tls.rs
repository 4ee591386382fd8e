//! TLS for the connection, as libpq does it: `sslmode` and `sslrootcert`
//! from the connection string (URL query or `key=value`), else the
//! `PGSSLMODE` and `PGSSLROOTCERT` variables. TLS itself is rustls (with
//! the ring provider); tokio-postgres-rustls plugs it into the driver.
//!
//! | sslmode       | TLS                        | server certificate                          |
//! |---------------|----------------------------|---------------------------------------------|
//! | `disable`     | never                      | -                                           |
//! | `prefer`      | if the server offers it (the default) | not checked                      |
//! | `require`     | always                     | not checked, unless a root CA file exists (then as `verify-ca`, as libpq) |
//! | `verify-ca`   | always                     | signed by a CA in `sslrootcert`             |
//! | `verify-full` | always                     | signed by a CA in `sslrootcert` and issued for the host name |
//!
//! `sslrootcert` defaults to `~/.postgresql/root.crt`; `sslrootcert=system`
//! trusts the system's CAs and needs `verify-full`. PostgreSQL never uses
//! TLS over a Unix socket, so a connection through one ignores `sslmode`.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode \"allow\" is not supported: use disable, prefer, require, verify-ca or verify-full".into(),
                )
            }
            other => {
                return Err(format!(
                    "invalid sslmode \"{other}\": use disable, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS settings of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub mode: SslMode,
    /// `sslrootcert` as given (a file, or `system`), if given.
    pub root_cert: Option<String>,
}

impl Settings {
    /// From the values found in the connection string, else the environment.
    pub fn resolve(mode: Option<String>, root_cert: Option<String>) -> Result<Settings, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mode = match mode.or_else(|| env("PGSSLMODE")) {
            Some(m) => SslMode::parse(&m)?,
            None => SslMode::Prefer,
        };
        Ok(Settings { mode, root_cert: root_cert.or_else(|| env("PGSSLROOTCERT")) })
    }
}

/// The trust anchors that `verify-ca` and `verify-full` check against.
enum Roots {
    File(PathBuf),
    System,
}

impl Roots {
    fn of(settings: &Settings) -> Roots {
        match settings.root_cert.as_deref() {
            Some("system") => Roots::System,
            Some(path) => Roots::File(PathBuf::from(path)),
            None => Roots::File(
                std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".postgresql/root.crt"),
            ),
        }
    }

    fn describe(&self) -> String {
        match self {
            Roots::File(p) => p.display().to_string(),
            Roots::System => "the system's trusted certificate authorities".into(),
        }
    }

    fn load(&self) -> Result<RootCertStore, String> {
        let mut store = RootCertStore::empty();
        match self {
            Roots::File(path) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(|i| i.collect())
                    .map_err(|e| format!("could not read root certificate file \"{}\": {e}", path.display()))?;
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("root certificate file \"{}\" holds no usable certificate", path.display()));
                }
            }
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
                if store.is_empty() {
                    return Err("sslrootcert=system: no trusted certificate authority found on this system".into());
                }
            }
        }
        Ok(store)
    }
}

/// What the connection does with TLS.
pub enum Plan {
    /// No TLS (sslmode=disable, or only Unix sockets).
    Plain,
    /// TLS, with this client configuration; `required`: fail if the
    /// server does not offer it. `roots` names the CAs for messages.
    Tls { config: Box<ClientConfig>, required: bool, roots: Option<String> },
}

/// Decide and build the TLS configuration for `settings`; `unix_only`: every
/// host of the connection is a Unix socket.
pub fn plan(settings: &Settings, unix_only: bool) -> Result<Plan, String> {
    if settings.mode == SslMode::Disable || unix_only {
        return Ok(Plan::Plain);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Roots::of(settings);
    if matches!(roots, Roots::System) && settings.mode != SslMode::VerifyFull {
        return Err(format!(
            "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
            settings.mode.as_str()
        ));
    }
    // libpq: with a root CA file present, require verifies as verify-ca does.
    let verify = match settings.mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        SslMode::Require => matches!(&roots, Roots::File(p) if p.is_file()),
        _ => false,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let (config, roots) = if verify {
        if let Roots::File(p) = &roots {
            if !p.exists() {
                return Err(format!(
                    "root certificate file \"{}\" does not exist; either provide the file (sslrootcert, PGSSLROOTCERT), \
                     use the system's trusted roots with sslrootcert=system, or change sslmode to disable server \
                     certificate verification",
                    p.display()
                ));
            }
        }
        let store = roots.load()?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let config = if settings.mode == SslMode::VerifyFull {
            builder.with_webpki_verifier(webpki).with_no_client_auth()
        } else {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyName(webpki))).with_no_client_auth()
        };
        (config, Some(roots.describe()))
    } else {
        let config =
            builder.dangerous().with_custom_certificate_verifier(Arc::new(Unchecked(provider))).with_no_client_auth();
        (config, None)
    };
    Ok(Plan::Tls { config: Box::new(config), required: settings.mode != SslMode::Prefer, roots })
}

/// Why a TLS connection failed, in words, for the error message.
pub fn explain(error: &str, mode: SslMode, roots: Option<&str>, host: &str) -> Option<String> {
    let roots = roots.unwrap_or("the root certificate file");
    // rustls names its errors both ways ("UnknownIssuer", "certificate not valid for name").
    let e = error.to_lowercase().replace(' ', "");
    if e.contains("unknownissuer") || e.contains("badsignature") {
        Some(format!(
            "the server's certificate is not signed by a certificate authority in {roots} (sslmode={})",
            mode.as_str()
        ))
    } else if e.contains("notvalidforname") {
        Some(format!(
            "the server's certificate is not issued for the host name \"{host}\" (sslmode=verify-full checks the \
             name; connect by a name the certificate lists)"
        ))
    } else if e.contains("certificateexpired") || e.contains("invalidpeercertificate:expired") {
        Some("the server's certificate has expired".into())
    } else if e.contains("notvalidyet") {
        Some("the server's certificate is not valid yet".into())
    } else if error.contains("server does not support TLS") {
        Some(format!("sslmode={} requires TLS, and the server does not offer it", mode.as_str()))
    } else {
        None
    }
}

/// Split `sslmode` and `sslrootcert` out of a connection string, which
/// tokio-postgres would otherwise parse (and refuse `verify-ca`). Returns the
/// rest of the string and the two values. Both forms: a URL
/// (`postgresql://...?sslmode=verify-full`) and `key=value` pairs.
pub fn take_tls_params(conninfo: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        let Some((base, query)) = conninfo.split_once('?') else { return (conninfo.to_string(), None, None) };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match percent_decode(k).as_str() {
                "sslmode" => mode = Some(percent_decode(v)),
                "sslrootcert" => root = Some(percent_decode(v)),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        return (rest, mode, root);
    }
    let mut kept = Vec::new();
    for (raw, key, value) in conninfo_pairs(conninfo) {
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => kept.push(raw),
        }
    }
    (kept.join(" "), mode, root)
}

/// `key = value` pairs of a libpq connection string: (the pair's text, key, value).
fn conninfo_pairs(s: &str) -> Vec<(String, String, String)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '=' {
            i += 1;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i < chars.len() && chars[i] == '\'' {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    value.push(chars[i]);
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && !chars[i].is_whitespace() {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        let raw: String = chars[start..i.min(chars.len())].iter().collect();
        out.push((raw, key, value));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `verify-ca`: the chain must lead to a trusted CA; the name is not checked.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first, then the name: a name mismatch
        // means the chain was good.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root CA: encrypted, the certificate not
/// checked (the handshake's signatures still are).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_are_taken_out() {
        let (rest, mode, root) = take_tls_params(
            "postgresql://u@db.example:5433/mf?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.crt",
        );
        assert_eq!(rest, "postgresql://u@db.example:5433/mf?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/tmp/ca.crt"));
        let (rest, mode, root) = take_tls_params("postgres://h/db?sslmode=require");
        assert_eq!((rest.as_str(), mode.as_deref(), root), ("postgres://h/db", Some("require"), None));
        assert_eq!(take_tls_params("postgres://h/db").0, "postgres://h/db");
    }

    #[test]
    fn keyword_parameters_are_taken_out() {
        let (rest, mode, root) =
            take_tls_params("host=localhost  sslmode = verify-ca dbname=mf sslrootcert='/tmp/my ca.crt' user=a");
        assert_eq!(rest, "host=localhost dbname=mf user=a");
        assert_eq!(mode.as_deref(), Some("verify-ca"));
        assert_eq!(root.as_deref(), Some("/tmp/my ca.crt"));
    }

    #[test]
    fn modes() {
        for m in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            assert_eq!(SslMode::parse(m).unwrap().as_str(), m);
        }
        assert!(SslMode::parse("verify_full").unwrap_err().contains("invalid sslmode"));
    }

    #[test]
    fn system_roots_need_verify_full() {
        let s = Settings { mode: SslMode::Require, root_cert: Some("system".into()) };
        assert!(plan(&s, false).err().unwrap().contains("verify-full"));
        assert!(matches!(plan(&s, true), Ok(Plan::Plain)), "Unix sockets never use TLS");
    }

    #[test]
    fn failures_are_explained() {
        let why = |e| explain(e, SslMode::VerifyFull, Some("/ca.crt"), "db1").unwrap();
        assert!(
            why("invalid peer certificate: UnknownIssuer").contains("not signed by a certificate authority in /ca.crt")
        );
        assert!(why("invalid peer certificate: certificate not valid for name \"db1\"").contains("host name \"db1\""));
        assert!(why("invalid peer certificate: NotValidForName").contains("host name"));
        assert!(explain("db error: FATAL: password authentication failed", SslMode::Require, None, "h").is_none());
    }

    #[test]
    fn a_missing_root_file_is_named() {
        let s = Settings { mode: SslMode::VerifyCa, root_cert: Some("/nonexistent/ca.crt".into()) };
        let e = plan(&s, false).err().unwrap();
        assert!(e.contains("\"/nonexistent/ca.crt\" does not exist"), "{e}");
    }
}
