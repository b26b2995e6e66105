//! PostgreSQL over TLS: `sslmode` and `sslrootcert` in the store URL, against
//! the test server at `LEARNLOOP_TEST_PG_URL` (skipped without it).
//!
//! The server must have `ssl = on` (`scripts/pg-up` turns it on with the
//! machine's snakeoil certificate, whose name is `localhost`). Covered:
//! `require` connects encrypted (and the store works over it), `disable`
//! does not encrypt, `verify-full` refuses the self-signed certificate when
//! the roots are the public CAs, with a message saying what to do, refuses
//! a certificate for another name, and
//! connects when `sslrootcert` is that certificate and the URL names its
//! host; `verify-ca` accepts it whatever the host is called.

use learnloop_store::pg_test::{TestSchema, server_url};
use learnloop_store::pg_tls::{connector, split_url};
use learnloop_store::{PostgresStore, Store};

/// Whether a connection made with `url` (libpq parameters included) is encrypted.
fn encrypted(url: &str) -> Result<bool, String> {
    let (url, settings) = split_url(url).map_err(|e| e.to_string())?;
    let config: postgres::Config = url.parse().map_err(|e: postgres::Error| e.to_string())?;
    let mut client = config.connect(connector(&settings).map_err(|e| e.to_string())?).map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        text
    })?;
    let row =
        client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

fn with(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

#[test]
fn postgres_tls_modes() {
    let Some(server) = server_url("postgres_tls_modes") else { return };
    let mut plain = postgres::Client::connect(&server, postgres::NoTls).expect("connect");
    let ssl: String = plain.query_one("SHOW ssl", &[]).unwrap().get(0);
    assert_eq!(ssl, "on", "the test server has TLS off: run scripts/pg-up, which turns it on");
    let cert_file: String = plain.query_one("SHOW ssl_cert_file", &[]).unwrap().get(0);

    assert_eq!(encrypted(&with(&server, "sslmode=require")), Ok(true), "require encrypts");
    assert_eq!(encrypted(&with(&server, "sslmode=prefer")), Ok(true), "prefer encrypts when the server offers TLS");
    assert_eq!(encrypted(&with(&server, "sslmode=disable")), Ok(false), "disable does not");

    // The store itself over TLS: migrations, an append, a read.
    let schema = TestSchema::create(&server);
    let store = PostgresStore::open(&with(schema.url(), "sslmode=require"), 2).expect("store over sslmode=require");
    assert_eq!(store.max_seq().unwrap(), 0);

    // verify-full against public CAs only: the self-signed certificate is refused, saying what to do.
    // (Not against "the system roots": Debian puts the snakeoil certificate in /etc/ssl/certs.)
    let public = "/etc/ssl/certs/ca-certificates.crt";
    if std::path::Path::new(public).exists() {
        let e = PostgresStore::open(&with(schema.url(), &format!("sslmode=verify-full&sslrootcert={public}")), 1)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("UnknownIssuer") && e.contains("not signed by a root in sslrootcert"), "{e}");
    }

    // Certificate checks with the server's own certificate as the root.
    if std::fs::read(&cert_file).is_err() {
        eprintln!("postgres_tls_modes: {cert_file} is not readable here; skipped the sslrootcert cases");
        return;
    }
    let rooted = with(&server, &format!("sslmode=verify-full&sslrootcert={cert_file}"));
    if server.contains("@127.0.0.1:") {
        // The snakeoil certificate names `localhost`, not 127.0.0.1.
        let e = encrypted(&rooted).expect_err("the name does not match");
        assert!(e.contains("not valid for name \"127.0.0.1\""), "{e}");
        let e = PostgresStore::open(&with(schema.url(), &format!("sslmode=verify-full&sslrootcert={cert_file}")), 1)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("does not name the host"), "{e}");
        assert_eq!(
            encrypted(&rooted.replace("@127.0.0.1:", "@localhost:")),
            Ok(true),
            "verify-full by the certificate's name"
        );
        let ca = with(&server, &format!("sslmode=verify-ca&sslrootcert={cert_file}"));
        assert_eq!(encrypted(&ca), Ok(true), "verify-ca does not check the name");
    }
    let e = PostgresStore::open(&with(schema.url(), "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"), 1)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("sslrootcert=/nonexistent/ca.pem"), "{e}");
}
