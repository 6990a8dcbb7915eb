//! Crashes that land in the middle of a step (`midsend.rs`), and the client
//! connections a crash breaks (`SimConfig::clients_see_crashes`): the parts of the
//! event loop only the sharp profile uses.

use super::{label, Event, Name, World};
use crate::sim::api::{Hardware, NodeIndex, Output, RequestId, SimNode};
use crate::sim::faults::Fault;
use crate::sim::midsend::{self, Armed};
use crate::sim::sets::is_set_request;
use crate::sim::trace::Scope;

impl<H: Hardware> World<H> {
    /// Like `drain`, for a node armed to crash mid-send: the step's outputs are taken
    /// first, so the crash can fall between two of its replica writes.
    pub(super) fn drain_armed(&mut self, i: NodeIndex, armed: Armed) {
        let mut outputs = Vec::new();
        while let Some(out) = self.slots[i].node.as_mut().and_then(SimNode::poll_output) {
            // Scopes in output order: `message_key` learns from requests as they go.
            let scope = match &out {
                Output::Send { message, .. } => Some(label(self.hw.message_key(message))),
                Output::Reply { .. } => None,
            };
            outputs.push((out, scope));
        }
        let writes: Vec<bool> = outputs
            .iter()
            .map(|(out, _)| {
                matches!(out, Output::Send { to, message } if *to != i && self.hw.is_replica_write(message))
            })
            .collect();
        let cut = midsend::cut(armed, &writes).unwrap_or(outputs.len());
        let lost = outputs.len() - cut;
        for (out, scope) in outputs.into_iter().take(cut) {
            self.output(i, out, scope);
        }
        if lost == 0 {
            self.reschedule_tick(i);
            return;
        }
        self.record(
            Scope::Global,
            format!(
                "{} loses power while sending: {lost} of its step's outputs never leave it",
                Name(i)
            ),
        );
        self.crash(i);
        let restart = self.now + armed.downtime_ms.max(1);
        self.queue.push(restart, Event::Fault(Fault::Restart(i)));
    }

    /// Node `i` crashed: each client with a request at it learns at once that the
    /// request's fate is unknown, instead of waiting for its deadline.
    pub(super) fn break_connections(&mut self, i: NodeIndex) {
        let lost: Vec<RequestId> = self
            .requests_at
            .iter()
            .filter(|(_, node)| **node == i)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.connection_lost(i, id, true);
        }
    }

    /// The client of request `id` finds its connection to `node` broken (`in_flight`:
    /// the node crashed while it had the request; else it was down when the request
    /// arrived): the request's outcome is unknown, as at its deadline, but the client
    /// knows now.
    pub(super) fn connection_lost(&mut self, node: NodeIndex, id: RequestId, in_flight: bool) {
        self.requests_at.remove(&id);
        let key = if is_set_request(id) {
            self.sets.key_of(id)
        } else {
            self.workload.connection_lost(id, node, in_flight);
            self.workload.key_of(id)
        };
        let text = format!(
            "client's connection to {} breaks: req{id} unknown",
            Name(node)
        );
        self.record(label(key), text);
        let at = self.now + self.client_delay();
        self.queue.push(at, Event::Deadline(id));
    }
}
