//! The causal context handed to clients: opaque bytes that round-trip a
//! [`VersionVector`].
//!
//! Format: `CONTEXT_FORMAT_VERSION (1 byte) | postcard(VersionVector)`. The version byte
//! lets the format change later without misreading old contexts; clients never look
//! inside. Decoding is strict (known version, no trailing bytes) and never panics: a
//! context that does not decode is refused with a typed error, never guessed at.
//!
//! What a context can do if forged: name dots that do not exist yet. `Siblings::update`
//! then treats them as already superseded (values with those dots written later would
//! be dropped on arrival) and may push a counter to `u64::MAX` (refused with
//! `CounterExhausted`). Contexts are therefore not a security boundary: a client able to
//! write a key can already overwrite it.

use thiserror::Error;

use crate::versioning::VersionVector;

pub(crate) const CONTEXT_FORMAT_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContextError {
    #[error("empty context (a read's context is never empty; omit it for a blind write)")]
    Empty,
    #[error("context format version {0} is unknown (this node reads version 1)")]
    UnknownVersion(u8),
    #[error("context does not decode: {0}")]
    Malformed(String),
    #[error("context has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

/// The opaque bytes for `context`.
pub(crate) fn encode_context(context: &VersionVector) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_extend(context, vec![CONTEXT_FORMAT_VERSION])
}

/// The version vector in `bytes`, which must come from [`encode_context`].
pub fn decode_context(bytes: &[u8]) -> Result<VersionVector, ContextError> {
    let (version, body) = bytes.split_first().ok_or(ContextError::Empty)?;
    if *version != CONTEXT_FORMAT_VERSION {
        return Err(ContextError::UnknownVersion(*version));
    }
    let (context, rest) = postcard::take_from_bytes::<VersionVector>(body)
        .map_err(|error| ContextError::Malformed(error.to_string()))?;
    if !rest.is_empty() {
        return Err(ContextError::TrailingBytes(rest.len()));
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::NodeId;

    fn vector(pairs: &[(u64, u64)]) -> VersionVector {
        pairs
            .iter()
            .map(|(node, counter)| (NodeId(*node), *counter))
            .collect()
    }

    #[test]
    fn round_trips() {
        for context in [
            VersionVector::new(),
            vector(&[(1, 1)]),
            vector(&[(1, 7), (2, 300), (u64::MAX, u64::MAX)]),
        ] {
            let bytes = encode_context(&context).expect("encode");
            assert_eq!(bytes[0], CONTEXT_FORMAT_VERSION);
            assert_eq!(decode_context(&bytes), Ok(context));
        }
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert_eq!(decode_context(&[]), Err(ContextError::Empty));
        assert_eq!(
            decode_context(&[9, 0]),
            Err(ContextError::UnknownVersion(9))
        );
        assert!(matches!(
            decode_context(&[1]),
            Err(ContextError::Malformed(_))
        ));
        // Declares 5 entries, holds none.
        assert!(matches!(
            decode_context(&[1, 5]),
            Err(ContextError::Malformed(_))
        ));
        let mut bytes = encode_context(&vector(&[(1, 2)])).expect("encode");
        bytes.push(0);
        assert_eq!(decode_context(&bytes), Err(ContextError::TrailingBytes(1)));
        // A cut context never decodes to the original.
        let full = encode_context(&vector(&[(1, 2), (300, 70_000)])).expect("encode");
        for cut in 0..full.len() {
            assert_ne!(
                decode_context(&full[..cut]),
                Ok(vector(&[(1, 2), (300, 70_000)]))
            );
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod props {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// Whatever the bytes: an error or a vector, never a panic; and whatever
            /// decodes re-encodes to a context that decodes to the same vector.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
                if let Ok(context) = decode_context(&bytes) {
                    let again = encode_context(&context).expect("encode");
                    prop_assert_eq!(decode_context(&again), Ok(context));
                }
                let mut framed = vec![CONTEXT_FORMAT_VERSION];
                framed.extend_from_slice(&bytes);
                let _ = decode_context(&framed);
            }
        }
    }
}
