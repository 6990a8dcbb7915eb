//! Decodes arbitrary bytes as client-protocol frames (both directions): never a panic,
//! and anything accepted re-encodes to the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringkv::wire::{decode, encode, ClientFrame, ServerFrame};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode::<ClientFrame>(data) {
        let again = encode(&frame).expect("re-encode");
        assert_eq!(decode::<ClientFrame>(&again).ok(), Some(frame));
    }
    if let Ok(frame) = decode::<ServerFrame>(data) {
        let again = encode(&frame).expect("re-encode");
        assert_eq!(decode::<ServerFrame>(&again).ok(), Some(frame));
    }
});
