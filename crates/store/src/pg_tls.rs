//! TLS for PostgreSQL connections, as libpq's `sslmode` and `sslrootcert`
//! URL parameters ask for.
//!
//! The client is `tokio-postgres-rustls` over rustls with the ring provider.
//! Modes (libpq's names and meanings):
//! * `disable` — plain TCP;
//! * `prefer` (the default) — TLS when the server offers it, else plain;
//!   the certificate is not checked;
//! * `require` — TLS or no connection; the certificate is not checked;
//! * `verify-ca` — TLS, and the certificate must chain to a trusted root;
//! * `verify-full` — as `verify-ca`, and it must also name the host of the URL.
//!
//! Trusted roots for the `verify-*` modes: the PEM file at `sslrootcert`
//! (for a managed database, its provider's CA bundle), or with
//! `sslrootcert=system` or none, the system's roots. libpq's `allow` and the
//! client-certificate parameters (`sslcert`, `sslkey`) are refused with a
//! message rather than ignored. tokio-postgres itself only knows
//! `disable`/`prefer`/`require`, so [`split_url`] takes these parameters out
//! of the URL before it is parsed.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::StoreError;

/// `sslmode`, as libpq spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it; certificate not checked.
    Prefer,
    /// TLS required; certificate not checked.
    Require,
    /// TLS; certificate chained to a trusted root.
    VerifyCa,
    /// TLS; certificate chained to a trusted root and naming the host.
    VerifyFull,
}

/// The TLS parameters of a store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file, or `None` for the system roots.
    pub root_cert: Option<PathBuf>,
}

fn invalid(message: String) -> StoreError {
    StoreError::Invalid { field: "store.url".into(), message }
}

/// Percent-decodes a URL query value (as tokio-postgres does).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL: the URL
/// tokio-postgres parses (with `sslmode` mapped to what it knows) and the
/// settings.
pub fn split_url(url: &str) -> Result<(String, TlsSettings), StoreError> {
    let mut settings = TlsSettings { mode: SslMode::Prefer, root_cert: None };
    let mut set = |key: &str, value: &str| -> Result<bool, StoreError> {
        match key {
            "sslmode" => {
                settings.mode =
                    match value {
                        "disable" => SslMode::Disable,
                        "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        "allow" => return Err(invalid(
                            "sslmode=allow is not supported; use disable, prefer, require, verify-ca or verify-full"
                                .into(),
                        )),
                        other => {
                            return Err(invalid(format!(
                                "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                            )));
                        }
                    };
                Ok(true)
            }
            "sslrootcert" => {
                settings.root_cert = (value != "system" && !value.is_empty()).then(|| PathBuf::from(value));
                Ok(true)
            }
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" | "sslsni" | "sslcompression" => {
                Err(invalid(format!(
                    "{key} is not supported (TLS here is sslmode and sslrootcert; client certificates are not)"
                )))
            }
            _ => Ok(false),
        }
    };
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut kept = Vec::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !set(&decode(k), &decode(v))? {
            kept.push(pair);
        }
    }
    let mode = format!("sslmode={}", passthrough(settings.mode));
    kept.push(&mode);
    Ok((format!("{base}?{}", kept.join("&")), settings))
}

/// The `sslmode` tokio-postgres gets: the `verify-*` modes are `require`
/// there, the verification is the connector's.
fn passthrough(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
    }
}

/// The connector for these settings.
pub fn connector(settings: &TlsSettings) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS set-up: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match settings.mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            Arc::new(AnyCertificate { algorithms: provider.signature_verification_algorithms })
        }
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(roots(settings)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| StoreError::Backend(format!("TLS set-up: {e}")))?;
            if settings.mode == SslMode::VerifyCa { Arc::new(ChainOnly { inner: webpki }) } else { webpki }
        }
    };
    let config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn roots(settings: &TlsSettings) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match &settings.root_cert {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| invalid(format!("sslrootcert={}: cannot read PEM certificates: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(invalid(format!("sslrootcert={}: no certificate in the file", path.display())));
            }
            for c in certs {
                store.add(c).map_err(|e| {
                    invalid(format!("sslrootcert={}: not a usable root certificate: {e}", path.display()))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(invalid(
                    "no system root certificates found for sslmode=verify-ca/verify-full; point sslrootcert= at the server's CA certificate (PEM)".into(),
                ));
            }
        }
    }
    Ok(store)
}

/// Adds what to do to a TLS error from connecting.
pub fn explain(settings: &TlsSettings, error: &str) -> String {
    let hint = if error.contains("UnknownIssuer") {
        match &settings.root_cert {
            Some(p) => format!(
                " (the server's certificate is not signed by a root in sslrootcert={}; is it the right CA file?)",
                p.display()
            ),
            None => " (the server's certificate is not signed by a system root: for a self-signed or private CA, set sslrootcert=PATH to its CA certificate)".to_string(),
        }
    } else if error.contains("NotValidForName") || error.contains("not valid for name") {
        " (the server's certificate does not name the host in the URL: connect by the name the certificate is for, or use sslmode=verify-ca)".to_string()
    } else if error.contains("server does not support TLS") || error.contains("TLS was required") {
        " (the server does not offer TLS: turn `ssl = on` on the server, or use sslmode=prefer or disable)".to_string()
    } else {
        String::new()
    };
    format!("{error}{hint}")
}

/// `prefer`/`require`: encrypt, accept any certificate (libpq's meaning),
/// but still check that the server holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must verify; the name need not match.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_parameters_are_taken_out_of_the_url() {
        let (url, s) =
            split_url("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&options=-c%20x").unwrap();
        assert_eq!(url, "postgres://u@h/db?options=-c%20x&sslmode=require");
        assert_eq!(s, TlsSettings { mode: SslMode::VerifyFull, root_cert: Some("/tmp/ca.pem".into()) });
        let (url, s) = split_url("postgres://u@h/db").unwrap();
        assert_eq!(url, "postgres://u@h/db?sslmode=prefer");
        assert_eq!(s.mode, SslMode::Prefer);
        let (_, s) = split_url("postgresql://u@h/db?sslmode=disable&sslrootcert=system").unwrap();
        assert_eq!(s, TlsSettings { mode: SslMode::Disable, root_cert: None });
        for bad in ["postgres://h/d?sslmode=allow", "postgres://h/d?sslmode=verify", "postgres://h/d?sslcert=/c.pem"] {
            let e = split_url(bad).unwrap_err().to_string();
            assert!(e.contains("ssl"), "{bad}: {e}");
        }
    }
}
