//! Where a node's messages go: the bounded output queue, and the loopback.
//!
//! A message to this node itself (the coordinator is usually one of the key's replicas)
//! goes to the loopback queue, which the node drains before `handle` returns, through
//! the same replica and coordinator code as a remote message: no shortcut around the
//! replica logic. The loopback is bounded by the work of one `handle` call (at most one
//! phase message per in-flight operation, one reply per message).
//!
//! Peer sends beyond `queued_sends_max` are dropped and counted: the protocol already
//! tolerates loss (coordinators resend), so a host that stops draining outputs costs
//! messages, not memory. Client replies are never dropped (a client would wait forever);
//! they are bounded by the client inputs the host itself handed in.

use std::collections::VecDeque;

use crate::protocol::{ClientReply, PeerMessage, RequestId};
use crate::ring::NodeId;

use super::io::Output;

#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    me: NodeId,
    queue: VecDeque<Output>,
    loopback: VecDeque<PeerMessage>,
    queued_sends: usize,
    queued_sends_max: usize,
    sends_dropped: u64,
}

impl Outbox {
    pub fn new(me: NodeId, queued_sends_max: usize) -> Self {
        Outbox {
            me,
            queue: VecDeque::new(),
            loopback: VecDeque::new(),
            queued_sends: 0,
            queued_sends_max,
            sends_dropped: 0,
        }
    }

    pub fn send(&mut self, to: NodeId, message: PeerMessage) {
        if to == self.me {
            self.loopback.push_back(message);
        } else {
            self.push(Output::Send { to, message });
        }
    }

    pub fn reply(&mut self, id: RequestId, reply: ClientReply) {
        self.push(Output::Reply { id, reply });
    }

    /// The next message this node sent itself.
    pub fn pop_loopback(&mut self) -> Option<PeerMessage> {
        self.loopback.pop_front()
    }

    fn push(&mut self, output: Output) {
        if matches!(output, Output::Send { .. }) {
            if self.queued_sends >= self.queued_sends_max {
                self.sends_dropped += 1;
                return;
            }
            self.queued_sends += 1;
        }
        self.queue.push_back(output);
    }

    pub fn pop(&mut self) -> Option<Output> {
        let output = self.queue.pop_front()?;
        if matches!(output, Output::Send { .. }) {
            self.queued_sends = self.queued_sends.saturating_sub(1);
        }
        Some(output)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn sends_dropped(&self) -> u64 {
        self.sends_dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ClientReply, OpId, PeerMessage, RequestId};
    use crate::ring::NodeId;

    #[test]
    fn drops_sends_beyond_the_bound_but_never_replies() {
        let mut outbox = Outbox::new(NodeId(1), 2);
        let send = Output::Send {
            to: NodeId(2),
            message: PeerMessage::WriteAck {
                req: OpId::default(),
            },
        };
        let reply = Output::Reply {
            id: RequestId(1),
            reply: ClientReply::Done,
        };
        for _ in 0..3 {
            outbox.push(send.clone());
            outbox.push(reply.clone());
        }
        outbox.send(
            NodeId(1),
            PeerMessage::WriteAck {
                req: OpId::default(),
            },
        );
        assert!(outbox.pop_loopback().is_some());
        assert_eq!(outbox.len(), 5);
        assert_eq!(outbox.sends_dropped(), 1);
        assert_eq!(outbox.pop(), Some(send.clone()));
        outbox.push(send.clone());
        assert_eq!(outbox.len(), 5);
    }
}
