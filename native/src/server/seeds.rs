//! The seeds a joining node asks: `--seed` addresses as given, plus every address a
//! `--seeds-dns` name resolves to (a Kubernetes headless Service answers with its pods'
//! addresses). The name is resolved again on every join attempt, so pods that started
//! after this one, or moved, are found; this node's own addresses are left out.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::{HostPort, ServeConfig};
use crate::error::{Error, Result};

/// Addresses taken from one DNS answer, at most (a bound on what a DNS server can make
/// this node dial per attempt).
const DNS_SEEDS_MAX: usize = 64;
/// How long startup waits for `--seeds-dns` to resolve: a pod's own DNS records appear
/// only once it has an address, and a StatefulSet starts pods together.
const START_WAIT: Duration = Duration::from_secs(120);
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Seeds {
    /// `--seed` addresses other than this node's.
    fixed: Vec<String>,
    dns: Option<HostPort>,
    /// This node's `--listen` and `--advertise` and the addresses they resolve to.
    own: Vec<String>,
}

impl Seeds {
    /// The seeds of `config`; with `--seeds-dns`, waits (bounded) until the name
    /// resolves, so a misspelt or missing Service fails the start with a clear error.
    pub async fn start(config: &ServeConfig) -> Result<Seeds> {
        let mut own = vec![config.listen.clone(), config.advertise.clone()];
        for address in [&config.listen, &config.advertise] {
            // Best effort: an advertised name not yet in DNS only means this node may
            // ask itself once, which it refuses.
            if let Ok(found) = tokio::net::lookup_host(address.as_str()).await {
                own.extend(found.map(|a| a.to_string()));
            }
        }
        let seeds = Seeds {
            fixed: config.seeds.clone(),
            dns: config.seeds_dns.clone(),
            own,
        };
        if let Some(dns) = &seeds.dns {
            let start = Instant::now();
            let mut backoff = RETRY_MIN;
            loop {
                match resolve(dns).await {
                    Ok(found) if !found.is_empty() => {
                        tracing::info!(name = %dns, addresses = ?found, "--seeds-dns resolved");
                        break;
                    }
                    Ok(_) => tracing::info!(name = %dns, "--seeds-dns: no address yet"),
                    Err(error) => {
                        tracing::info!(name = %dns, %error, "--seeds-dns: not resolved yet")
                    }
                }
                if start.elapsed() >= START_WAIT {
                    return Err(Error::Config(format!(
                        "--seeds-dns {dns}: no address after {} s; is the (headless) Service \
                         there and the name right?",
                        START_WAIT.as_secs()
                    )));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_MAX);
            }
        }
        Ok(seeds)
    }

    /// No seed at all: the node starts a cluster of its own (or waits, with data).
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty() && self.dns.is_none()
    }

    pub fn has_dns(&self) -> bool {
        self.dns.is_some()
    }

    /// The seeds to ask now: `--seed` ones, then the DNS name's current addresses
    /// (sorted, so every node asks in the same order), without this node's own.
    pub async fn current(&self) -> Vec<String> {
        let mut seeds = self.fixed.clone();
        if let Some(dns) = &self.dns {
            match resolve(dns).await {
                Ok(found) => seeds.extend(found),
                Err(error) => tracing::debug!(name = %dns, %error, "--seeds-dns not resolved"),
            }
        }
        let mut seen = std::collections::HashSet::new();
        seeds.retain(|seed| !self.own.contains(seed) && seen.insert(seed.clone()));
        seeds
    }
}

/// The addresses `dns` resolves to, sorted and deduplicated, at most `DNS_SEEDS_MAX`.
async fn resolve(dns: &HostPort) -> std::io::Result<Vec<String>> {
    let mut found: Vec<SocketAddr> = tokio::net::lookup_host((dns.host.as_str(), dns.port))
        .await?
        .collect();
    found.sort();
    found.dedup();
    found.truncate(DNS_SEEDS_MAX);
    Ok(found.iter().map(SocketAddr::to_string).collect())
}
