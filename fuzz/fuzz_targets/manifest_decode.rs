//! Decodes arbitrary bytes as a manifest: never a panic, and anything accepted re-encodes
//! to exactly the input (the format is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringkv_core::storage::lsm::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::decode("MANIFEST", data) {
        assert_eq!(manifest.encode(), data);
        assert!(manifest.check_consistent().is_ok());
    }
});
