//! The accept loop shared by every listener: a connection limit (a semaphore per
//! listener, so a flood on one port cannot lock peers out of another), rejection of
//! the excess with a short protocol-appropriate message, and shutdown (stop accepting;
//! `drain` then waits until every connection task has finished).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;
use super::shutdown::Shutdown;

#[derive(Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Gate {
    pub fn new(max: usize) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Waits (at most `deadline`) until every connection of this gate has finished.
    /// Returns how many were still open at the deadline.
    pub async fn drain(&self, deadline: Duration) -> usize {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        match tokio::time::timeout(deadline, self.permits.clone().acquire_many_owned(all)).await {
            Ok(_) => 0,
            Err(_) => self.max - self.permits.available_permits(),
        }
    }
}

/// Accepts until shutdown; each connection runs `handle` in its own task holding a
/// permit. Over the limit, `reject` is written (best effort, never waited for) and the
/// socket closed.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    gate: Gate,
    metrics: Arc<Metrics>,
    mut shutdown: Shutdown,
    reject: &'static [u8],
    handle: F,
) where
    F: Fn(TcpStream, std::net::SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit: OwnedSemaphorePermit = match gate.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                metrics.inc(&metrics.connections_rejected);
                let _ = stream.try_write(reject);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        metrics.inc(&metrics.connections_accepted);
        metrics.inc(&metrics.connections_open);
        let task = handle(stream, peer);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            task.await;
            metrics.dec(&metrics.connections_open);
            drop(permit);
        });
    }
}
