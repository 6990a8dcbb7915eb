//! Messages through postcard (the planned wire encoding): round trips and byte bounds.

use super::super::{
    ExchangeRequest, ExchangeResponse, HashRun, RejectReason, MAX_HASHES_PER_MESSAGE,
};
use crate::ring::TokenRange;

/// Largest request: 256 hashes of full-width varints, split into 256 one-hash runs
/// (the worst case for run overhead), on a range with maximal varint bounds.
#[test]
fn largest_messages_round_trip_within_a_few_kib() {
    let range = TokenRange::new(u64::MAX - 1, u64::MAX);
    let request = ExchangeRequest::Level {
        id: u64::MAX,
        range,
        depth: 16,
        level: 16,
        part: u32::MAX,
        runs: (0..MAX_HASHES_PER_MESSAGE as u64)
            .map(|i| HashRun {
                index_start: u64::MAX - i,
                hashes: vec![u64::MAX],
            })
            .collect(),
    };
    let bytes = postcard::to_allocvec(&request).expect("encode");
    assert!(bytes.len() <= 6 * 1024, "{} bytes", bytes.len());
    let decoded: ExchangeRequest = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(decoded, request);

    let response = ExchangeResponse::Level {
        id: u64::MAX,
        range,
        level: 16,
        part: u32::MAX,
        differing: (0..MAX_HASHES_PER_MESSAGE as u16).collect(),
    };
    let bytes = postcard::to_allocvec(&response).expect("encode");
    assert!(bytes.len() <= 1024, "{} bytes", bytes.len());
    assert_eq!(
        postcard::from_bytes::<ExchangeResponse>(&bytes).expect("decode"),
        response
    );

    for reason in [
        RejectReason::UnknownRange,
        RejectReason::DepthMismatch { ours: 3 },
        RejectReason::Malformed,
    ] {
        let rejected = request.rejection(reason);
        let bytes = postcard::to_allocvec(&rejected).expect("encode");
        assert_eq!(
            postcard::from_bytes::<ExchangeResponse>(&bytes).expect("decode"),
            rejected
        );
    }
}

#[test]
fn garbage_bytes_fail_to_decode_without_panicking() {
    for len in 0..64usize {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let _ = postcard::from_bytes::<ExchangeRequest>(&bytes);
        let _ = postcard::from_bytes::<ExchangeResponse>(&bytes);
    }
}
