//! Decodes arbitrary bytes as a peer handshake message and verifies it as a hello:
//! never a panic, and random bytes never pass the MAC check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringkv::peer::auth::{decode, PeerAuth};
use ringkv_core::ring::NodeId;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode(data) {
        let auth = PeerAuth::new(b"fuzz-cluster-secret".to_vec(), NodeId(1));
        assert!(auth.verify_hello(&message, &[7; 32]).is_err());
    }
});
