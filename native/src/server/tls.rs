//! Optional TLS (rustls, ring provider) for every listener (`wss://` peers and clients,
//! RESP over TLS, HTTPS) and for dialing peers. One certificate and key per node
//! (`--tls-cert`, `--tls-key`, PEM). Peers and clients verify the server against
//! `--tls-ca` (PEM roots), or, without it, against the node's own certificate, which
//! suits a cluster sharing one self-signed certificate. Peers are verified by name
//! (the host of their address: an IP address needs an IP SAN); peer identity is still
//! proven by the cluster-secret handshake on top.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::conn::Conn;
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Tls {
    acceptor: Option<TlsAcceptor>,
    connector: TlsConnector,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("{}: no certificate", path.display())));
    }
    Ok(certs)
}

/// A client-only configuration (CLI, tests): trusts the roots in `ca`.
pub fn client(ca: &Path) -> Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| Error::Config(format!("{}: {e}", ca.display())))?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

impl Tls {
    /// Server and peer-dialing configuration of a node.
    pub fn load(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Tls> {
        let chain = certs(cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| Error::Config(format!("{}: {e}", key.display())))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| Error::Config(format!("TLS certificate and key: {e}")))?;
        Ok(Tls {
            acceptor: Some(TlsAcceptor::from(Arc::new(server))),
            connector: client(ca.unwrap_or(cert))?,
        })
    }

    /// The server side of a new connection, within `limit`; `None` if the handshake
    /// failed or took too long.
    pub async fn accept(&self, tcp: TcpStream, limit: Duration) -> Option<Conn> {
        let acceptor = self.acceptor.as_ref()?;
        match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => Some(Conn::Server(Box::new(stream))),
            _ => None,
        }
    }

    pub fn client_only(connector: TlsConnector) -> Tls {
        Tls {
            acceptor: None,
            connector,
        }
    }

    /// Dials `address` (`host:port`) over TLS, verifying the server for `host`.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        address: &str,
    ) -> std::result::Result<Conn, String> {
        let host = address
            .rsplit_once(':')
            .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or(address);
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
        self.connector
            .connect(name, tcp)
            .await
            .map(|stream| Conn::Client(Box::new(stream)))
            .map_err(|e| format!("TLS to {address}: {e}"))
    }
}

/// The server side of an accepted TCP connection: TLS when configured.
pub async fn accept(tls: Option<&Tls>, tcp: TcpStream, limit: Duration) -> Option<Conn> {
    match tls {
        Some(tls) => tls.accept(tcp, limit).await,
        None => Some(Conn::Plain(tcp)),
    }
}
