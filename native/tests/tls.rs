//! TLS on every listener and peer link: a 3-node cluster sharing one self-signed
//! certificate (made with the `openssl` CLI; skipped with a notice if it is missing)
//! replicates over TLS, clients reach it over TLS, and plaintext is refused.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::Cluster;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn make_cert(dir: &Path) -> bool {
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=ringkv-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output();
    matches!(status, Ok(out) if out.status.success())
}

#[test]
fn cluster_over_tls() {
    let certs = tempfile::tempdir().expect("tempdir");
    if !make_cert(certs.path()) {
        println!("NOTICE: openssl CLI not available; skipping the TLS test");
        return;
    }
    let cert = certs.path().join("cert.pem").display().to_string();
    let key = certs.path().join("key.pem").display().to_string();
    let cluster = Cluster::start(3, &["--tls-cert", &cert, "--tls-key", &key]);

    // The client CLI over wss: write on n1, read on n3 (replication runs over TLS).
    let ringkv = |args: &[&str]| {
        std::process::Command::new(common::ringkv_bin())
            .args(args)
            .output()
            .expect("ringkv")
    };
    let out = ringkv(&[
        "put",
        "secure",
        "yes",
        "--node",
        &cluster.nodes[0].ws,
        "--tls-ca",
        &cert,
    ]);
    assert!(out.status.success(), "{out:?}\n{}", cluster.nodes[0].log());
    let out = ringkv(&[
        "get",
        "secure",
        "--node",
        &cluster.nodes[2].ws,
        "--tls-ca",
        &cert,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes");
    // Without TLS the client gets nowhere.
    let out = ringkv(&["get", "secure", "--node", &cluster.nodes[2].ws]);
    assert!(!out.status.success());

    // RESP over TLS.
    let roots = {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&cert).expect("pem") {
            roots.add(c.expect("cert")).expect("root");
        }
        roots
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let resp = cluster.nodes[1].resp.clone();
    let reply = runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&resp).await.expect("tcp");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
        tls.write_all(b"*2\r\n$3\r\nGET\r\n$6\r\nsecure\r\n")
            .await
            .expect("send");
        let mut buf = vec![0u8; 64];
        let n = tls.read(&mut buf).await.expect("read");
        buf.truncate(n);
        buf
    });
    assert_eq!(reply, b"$3\r\nyes\r\n");

    // Plaintext RESP on the TLS port: no answer, and the node carries on.
    let mut plain = TcpStream::connect(&cluster.nodes[1].resp).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    plain.write_all(b"PING\r\n").expect("send");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"+PONG"));
    let out = ringkv(&[
        "get",
        "secure",
        "--node",
        &cluster.nodes[1].ws,
        "--tls-ca",
        &cert,
    ]);
    assert!(out.status.success(), "{out:?}");
}
