//! One shutdown signal for every task: listeners stop accepting, connections stop
//! reading new requests and finish the ones in flight, links close.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once shutdown is triggered (at once if it already was).
    pub async fn wait(&mut self) {
        // An error means the trigger is gone, which only happens at process end.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}
