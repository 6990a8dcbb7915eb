//! The value encoding round-trips every supported JS value exactly, refuses unsupported
//! ones with a typed error, and never panics on damaged bytes.
//!
//! Run: `cargo test -p ringkv-wasm --target wasm32-unknown-unknown --test wasm_value`
#![cfg(target_arch = "wasm32")]

mod common;

use common::{deep_equal, fixtures, unsupported};
use ringkv_core::rand::SplitMix64;
use ringkv_wasm::value::{decode, encode, ValueError};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn supported_values_round_trip_exactly() {
    for (i, v) in fixtures().iter().enumerate() {
        let bytes = encode(&v, usize::MAX).unwrap_or_else(|e| panic!("fixture {i}: {e:?}"));
        let back = decode(&bytes).unwrap_or_else(|e| panic!("fixture {i}: {e:?}"));
        assert!(
            deep_equal(&v, &back),
            "fixture {i} ({v:?}) came back as {back:?}"
        );
        // Re-encoding is stable: the format is deterministic.
        assert_eq!(
            encode(&back, usize::MAX).expect("re-encode"),
            bytes,
            "fixture {i}"
        );
    }
}

#[wasm_bindgen_test]
fn negative_zero_and_nan_keep_their_identity() {
    let bytes = encode(&JsValue::from_f64(-0.0), 64).expect("encode");
    let back = decode(&bytes).expect("decode").as_f64().expect("number");
    assert!(back == 0.0 && back.is_sign_negative());
    let nan = decode(&encode(&JsValue::from_f64(f64::NAN), 64).expect("e")).expect("d");
    assert!(nan.as_f64().expect("number").is_nan());
}

#[wasm_bindgen_test]
fn unsupported_values_are_refused_not_mangled() {
    for (i, v) in unsupported().iter().enumerate() {
        match encode(&v, usize::MAX) {
            Err(ValueError::Unsupported(_)) => {}
            other => panic!("unsupported fixture {i} ({v:?}) gave {other:?}"),
        }
    }
}

#[wasm_bindgen_test]
fn the_size_limit_is_enforced_while_encoding() {
    let big = js_sys::Uint8Array::new_with_length(1000);
    match encode(&big.into(), 100) {
        Err(ValueError::TooLarge {
            limit_bytes: 100, ..
        }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[wasm_bindgen_test]
fn damaged_bytes_are_errors() {
    // Every strict prefix of every fixture's encoding is invalid, and so is any version
    // other than 1 or trailing garbage.
    for v in fixtures().iter() {
        let bytes = encode(&v, usize::MAX).expect("encode");
        for cut in 0..bytes.len().min(200) {
            assert!(
                matches!(decode(&bytes[..cut]), Err(ValueError::Corrupt(_))),
                "prefix {cut} of {v:?} decoded"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        let mut version = bytes;
        version[0] = 2;
        assert!(decode(&version).is_err());
    }
    // Random bytes: errors or values, never a panic or a runaway allocation.
    let mut rng = SplitMix64::new(7);
    for _ in 0..20_000 {
        let len = rng.below(24) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        if !b.is_empty() {
            b[0] = 1;
        }
        let _ = decode(&b);
    }
    assert!(
        decode(&[1, 0x06, 2, b'1', b'x']).is_err(),
        "bigint digits are checked"
    );
    assert!(
        decode(&[1, 0x05, 1, 0xFF]).is_err(),
        "strings must be UTF-8"
    );
    assert!(decode(&[1, 0x7F]).is_err(), "unknown tags are refused");
}
