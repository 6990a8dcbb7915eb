//! Decodes arbitrary bytes as peer frames (`PeerMessage`, what every node reads from
//! its peers): never a panic; anything accepted re-encodes and decodes to itself; and
//! the memory a frame makes the decoder allocate stays proportional to the frame
//! (libFuzzer's `-rss_limit_mb` / `-malloc_limit_mb` catch a runaway allocation: run with
//! e.g. `-malloc_limit_mb=64`, far below what an unbounded layout decode used to take).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringkv_core::protocol::{decode, encode, FORMAT_VERSION};

fuzz_target!(|data: &[u8]| {
    // As is, and behind a valid format version (most inputs fail at the version).
    let mut framed = FORMAT_VERSION.to_le_bytes().to_vec();
    framed.extend_from_slice(data);
    for bytes in [data, &framed[..]] {
        if let Ok(message) = decode(bytes) {
            let again = encode(&message).expect("a decoded message re-encodes");
            assert_eq!(decode(&again).ok(), Some(message));
        }
    }
});
