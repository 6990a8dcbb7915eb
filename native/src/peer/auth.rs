//! Peer authentication: mutual HMAC-SHA256 challenge–response over the shared cluster
//! secret. The secret never crosses the wire; each side proves it holds it by MACing
//! the other side's fresh random nonce, bound to both node ids and the direction, so a
//! recorded handshake cannot be replayed (new nonce per connection) or reflected (the
//! labels differ per direction).
//!
//! ```text
//! acceptor  ── Challenge { node: A, nonce: Na } ──▶ connector
//! connector ── Hello { node: C, to: A, address, nonce: Nc, mac: H(s, "hello" | Na | C | A | address) } ──▶
//! acceptor  ── Welcome { mac: H(s, "welcome" | Nc | A | C) } ──▶   (or closes: 1008)
//! ```
//! `address` is where the connector listens (its `--advertise`): covered by the MAC, so
//! the acceptor can dial it back there even before the layout has it (a member that
//! restarted on a new address).
//!
//! Each handshake message is one binary WebSocket message: `PEER_HANDSHAKE_VERSION |
//! postcard(PeerHandshake)`; after it, every message is a core frame
//! (`ringkv_core::protocol::encode`).

use hmac::{Hmac, Mac};
use ringkv_core::ring::NodeId;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const PEER_HANDSHAKE_VERSION: u8 = 1;
pub const NONCE_BYTES: usize = 32;
type Nonce = [u8; NONCE_BYTES];
type Tag = [u8; 32];

const HELLO_LABEL: &[u8] = b"ringkv peer hello v1";
const WELCOME_LABEL: &[u8] = b"ringkv peer welcome v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerHandshake {
    Challenge {
        node: u64,
        nonce: Nonce,
    },
    Hello {
        node: u64,
        to: u64,
        address: String,
        nonce: Nonce,
        mac: Tag,
    },
    Welcome {
        mac: Tag,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("malformed handshake message")]
    Malformed,
    #[error("unexpected handshake message")]
    Unexpected,
    #[error("handshake addressed to {to}, this node is {me}")]
    WrongNode { to: NodeId, me: NodeId },
    #[error("bad MAC: the peer does not hold the cluster secret")]
    BadMac,
    #[error("no randomness: {0}")]
    Random(String),
}

/// The cluster secret and this node's id.
#[derive(Clone)]
pub struct PeerAuth {
    secret: Vec<u8>,
    me: NodeId,
    /// Where this node listens, announced in its hellos.
    address: String,
}

/// Longest address a hello may announce.
pub const ADDRESS_BYTES_MAX: usize = 256;

impl PeerAuth {
    pub fn new(secret: Vec<u8>, me: NodeId) -> Self {
        PeerAuth {
            secret,
            me,
            address: String::new(),
        }
    }

    /// The node this auth speaks for.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// This auth announcing `address` in its hellos.
    pub fn with_address(mut self, address: String) -> Self {
        self.address = address;
        self
    }

    fn mac(&self, label: &[u8], nonce: &Nonce, a: NodeId, b: NodeId) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(label);
        mac.update(nonce);
        mac.update(&a.0.to_le_bytes());
        mac.update(&b.0.to_le_bytes());
        mac
    }

    /// Acceptor, step 1.
    pub fn challenge(&self) -> Result<(PeerHandshake, Nonce), AuthError> {
        let nonce = fresh_nonce()?;
        Ok((
            PeerHandshake::Challenge {
                node: self.me.0,
                nonce,
            },
            nonce,
        ))
    }

    /// Connector: answers the acceptor's challenge; returns the hello and the nonce the
    /// acceptor must MAC back. `expected` is the node we meant to reach.
    pub fn hello(
        &self,
        challenge: &PeerHandshake,
        expected: NodeId,
    ) -> Result<(PeerHandshake, Nonce), AuthError> {
        let PeerHandshake::Challenge { node, nonce } = challenge else {
            return Err(AuthError::Unexpected);
        };
        if NodeId(*node) != expected {
            return Err(AuthError::WrongNode {
                to: expected,
                me: NodeId(*node),
            });
        }
        let mine = fresh_nonce()?;
        let mut mac = self.mac(HELLO_LABEL, nonce, self.me, expected);
        mac.update(&(self.address.len() as u64).to_le_bytes());
        mac.update(self.address.as_bytes());
        Ok((
            PeerHandshake::Hello {
                node: self.me.0,
                to: expected.0,
                address: self.address.clone(),
                nonce: mine,
                mac: mac.finalize().into_bytes().into(),
            },
            mine,
        ))
    }

    /// Acceptor, step 2: checks the hello against our challenge nonce; on success
    /// returns the peer's id, the address it announced, and our welcome.
    pub fn verify_hello(
        &self,
        hello: &PeerHandshake,
        challenge_nonce: &Nonce,
    ) -> Result<(NodeId, String, PeerHandshake), AuthError> {
        let PeerHandshake::Hello {
            node,
            to,
            address,
            nonce,
            mac,
        } = hello
        else {
            return Err(AuthError::Unexpected);
        };
        let peer = NodeId(*node);
        if NodeId(*to) != self.me {
            return Err(AuthError::WrongNode {
                to: NodeId(*to),
                me: self.me,
            });
        }
        if peer == self.me || address.len() > ADDRESS_BYTES_MAX {
            return Err(AuthError::Unexpected);
        }
        let mut expected = self.mac(HELLO_LABEL, challenge_nonce, peer, self.me);
        expected.update(&(address.len() as u64).to_le_bytes());
        expected.update(address.as_bytes());
        expected.verify_slice(mac).map_err(|_| AuthError::BadMac)?;
        let welcome = self.mac(WELCOME_LABEL, nonce, self.me, peer);
        Ok((
            peer,
            address.clone(),
            PeerHandshake::Welcome {
                mac: welcome.finalize().into_bytes().into(),
            },
        ))
    }

    /// Connector, step 3: the acceptor proves it holds the secret too.
    pub fn verify_welcome(
        &self,
        welcome: &PeerHandshake,
        my_nonce: &Nonce,
        peer: NodeId,
    ) -> Result<(), AuthError> {
        let PeerHandshake::Welcome { mac } = welcome else {
            return Err(AuthError::Unexpected);
        };
        self.mac(WELCOME_LABEL, my_nonce, peer, self.me)
            .verify_slice(mac)
            .map_err(|_| AuthError::BadMac)
    }
}

pub fn encode(message: &PeerHandshake) -> Vec<u8> {
    let mut out = vec![PEER_HANDSHAKE_VERSION];
    // Fixed-size fields only: serialisation into a Vec cannot fail.
    out.extend(postcard::to_allocvec(message).unwrap_or_default());
    out
}

pub fn decode(bytes: &[u8]) -> Result<PeerHandshake, AuthError> {
    match bytes.split_first() {
        Some((&PEER_HANDSHAKE_VERSION, body)) => match postcard::take_from_bytes(body) {
            Ok((message, [])) => Ok(message),
            _ => Err(AuthError::Malformed),
        },
        _ => Err(AuthError::Malformed),
    }
}

fn fresh_nonce() -> Result<Nonce, AuthError> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(nonce)
}

/// A random hex string (dev-cluster secrets, request nonces).
pub fn random_hex(bytes: usize) -> Result<String, AuthError> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(secret_a: &[u8], secret_c: &[u8]) -> (PeerAuth, PeerAuth) {
        (
            PeerAuth::new(secret_a.to_vec(), NodeId(1)),
            PeerAuth::new(secret_c.to_vec(), NodeId(2)),
        )
    }

    #[test]
    fn both_sides_accept_with_the_same_secret() {
        let (acceptor, connector) = pair(b"s3cret-s3cret-s3cret", b"s3cret-s3cret-s3cret");
        let (challenge, na) = acceptor.challenge().expect("challenge");
        let challenge = decode(&encode(&challenge)).expect("decode");
        let (hello, nc) = connector.hello(&challenge, NodeId(1)).expect("hello");
        let (peer, address, welcome) = acceptor.verify_hello(&hello, &na).expect("verify hello");
        assert_eq!(peer, NodeId(2));
        assert_eq!(address, "");
        connector
            .verify_welcome(&welcome, &nc, NodeId(1))
            .expect("verify welcome");
    }

    #[test]
    fn wrong_secret_replay_and_reflection_fail() {
        let (acceptor, impostor) = pair(b"s3cret-s3cret-s3cret", b"guess-guess-guess-gu");
        let (challenge, na) = acceptor.challenge().expect("challenge");
        let (hello, _) = impostor.hello(&challenge, NodeId(1)).expect("hello");
        assert_eq!(acceptor.verify_hello(&hello, &na), Err(AuthError::BadMac));

        // A genuine hello replayed against a new challenge fails.
        let (acceptor, connector) = pair(b"s3cret-s3cret-s3cret", b"s3cret-s3cret-s3cret");
        let (challenge, na) = acceptor.challenge().expect("challenge");
        let (hello, nc) = connector.hello(&challenge, NodeId(1)).expect("hello");
        let (_, new_na) = acceptor.challenge().expect("challenge");
        assert_eq!(
            acceptor.verify_hello(&hello, &new_na),
            Err(AuthError::BadMac)
        );
        // A hello is not a valid welcome (different label and order).
        // A hello whose announced address was altered fails.
        let PeerHandshake::Hello {
            node,
            to,
            nonce,
            mac,
            ..
        } = hello.clone()
        else {
            panic!("hello")
        };
        let altered = PeerHandshake::Hello {
            node,
            to,
            address: "evil:1".into(),
            nonce,
            mac,
        };
        assert_eq!(acceptor.verify_hello(&altered, &na), Err(AuthError::BadMac));
        let (_, _, welcome) = acceptor.verify_hello(&hello, &na).expect("verify");
        let PeerHandshake::Hello { mac, .. } = hello else {
            panic!("hello")
        };
        assert!(connector
            .verify_welcome(&PeerHandshake::Welcome { mac }, &nc, NodeId(1))
            .is_err());
        assert!(connector.verify_welcome(&welcome, &nc, NodeId(1)).is_ok());
        assert!(decode(&[1, 9, 9]).is_err());
        assert!(decode(&[]).is_err());
    }
}
