//! The frame: `format version (u16, little-endian) | postcard(PeerMessage)`.
//!
//! The version comes first so a node can refuse a peer speaking a format it does not
//! know instead of misreading it (postcard is not self-describing). Bump
//! [`FORMAT_VERSION`] on any change that is not appending an enum variant at the end.
//! Framing on a byte stream (length prefixes) is the transport's job; a frame here is
//! one whole message, at most [`FRAME_SIZE_BYTES_MAX`].

use super::error::ProtocolError;
use super::messages::PeerMessage;

/// 3: members carry an identity digest (`NodeSpec::identity`), `Layout` a `LayoutReport`.
/// 4: layouts carry a purge floor, anti-entropy pushes an epoch. 5: histories carry
/// fences (`LayoutHistory::fences`). 6: histories carry the claims a node holds apart
/// from the established ones (`LayoutHistory::claims`), fences the claims held.
/// 7: members carry their process (`NodeSpec::process`, the shard layout).
pub const FORMAT_VERSION: u16 = 7;
/// Largest frame either side accepts: a 1 MiB value plus an 8 KiB key and headers fit
/// with room to spare, and a receiver never buffers more for one message.
pub const FRAME_SIZE_BYTES_MAX: usize = 2 << 20;

/// Encodes `message` as one frame. Fails only when the frame would exceed
/// [`FRAME_SIZE_BYTES_MAX`] (which the node's size limits rule out for its own messages)
/// or serialization itself fails.
pub fn encode(message: &PeerMessage) -> Result<Vec<u8>, ProtocolError> {
    let frame =
        postcard::to_extend(message, FORMAT_VERSION.to_le_bytes().to_vec()).map_err(|error| {
            ProtocolError::Malformed {
                reason: error.to_string(),
            }
        })?;
    check_size(frame.len())?;
    Ok(frame)
}

/// The version of a frame holding several messages for one receiver, in order:
/// `BATCH_FORMAT_VERSION (u16, little-endian) | postcard(Vec<PeerMessage>)`. What a
/// node sends one peer in one turn goes as one such frame (one WebSocket message, one
/// decode, one hand-off to the node thread). A batch never holds a `Relayed` envelope
/// that counts: receivers honour `Relayed` only as a single-message frame on a peer
/// link, so a replica cannot smuggle one inside a batch its host forwards undecoded.
pub const BATCH_FORMAT_VERSION: u16 = 0x8000 | FORMAT_VERSION;

/// Encodes `messages` (for one receiver, in order) as few frames as fit: one plain
/// frame for a single message, else batch frames of at most [`FRAME_SIZE_BYTES_MAX`]
/// (a batch that would be larger is split). Returns the frames and how many messages
/// could not be encoded (each larger than a frame alone; the node's limits rule that
/// out for its own messages).
pub fn encode_batch(messages: &[PeerMessage]) -> (Vec<Vec<u8>>, usize) {
    let mut frames = Vec::new();
    let mut dropped = 0;
    encode_into(messages, &mut frames, &mut dropped);
    (frames, dropped)
}

fn encode_into(messages: &[PeerMessage], frames: &mut Vec<Vec<u8>>, dropped: &mut usize) {
    match messages {
        [] => {}
        [one] => match encode(one) {
            Ok(frame) => frames.push(frame),
            Err(_) => *dropped += 1,
        },
        several => {
            let head = BATCH_FORMAT_VERSION.to_le_bytes().to_vec();
            match postcard::to_extend(several, head) {
                Ok(frame) if frame.len() <= FRAME_SIZE_BYTES_MAX => frames.push(frame),
                _ => {
                    let (left, right) = several.split_at(several.len() / 2);
                    encode_into(left, frames, dropped);
                    encode_into(right, frames, dropped);
                }
            }
        }
    }
}

/// Decodes a plain or batch frame into its messages, in order. Never panics; time and
/// allocation are bounded by the frame size, as for [`decode`].
pub fn decode_frame(frame: &[u8]) -> Result<Vec<PeerMessage>, ProtocolError> {
    check_size(frame.len())?;
    match frame {
        [lo, hi, body @ ..] if u16::from_le_bytes([*lo, *hi]) == BATCH_FORMAT_VERSION => {
            take_whole::<Vec<PeerMessage>>(body)
        }
        _ => decode(frame).map(|message| vec![message]),
    }
}

/// Decodes one frame. Never panics, whatever the bytes; allocation is bounded by the
/// frame size (the size check comes before any parsing).
pub fn decode(frame: &[u8]) -> Result<PeerMessage, ProtocolError> {
    check_size(frame.len())?;
    let (version, body) = match frame {
        [lo, hi, body @ ..] => (u16::from_le_bytes([*lo, *hi]), body),
        _ => {
            return Err(ProtocolError::Truncated {
                size_bytes: frame.len() as u64,
            })
        }
    };
    if version != FORMAT_VERSION {
        return Err(ProtocolError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    take_whole::<PeerMessage>(body)
}

/// Decodes a frame body that must be exactly one `T`: trailing bytes are an error.
fn take_whole<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ProtocolError> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(body).map_err(|error| ProtocolError::Malformed {
            reason: error.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes {
            count: rest.len() as u64,
        });
    }
    Ok(value)
}

/// Whether `frame` holds a `PeerMessage::Relayed`, read from its version and variant
/// index alone (postcard writes the variant index first, as a varint): a relay host
/// checks what it forwards without decoding it (some messages are costly to decode).
/// Frames it says "no" for may still be malformed; their receiver decodes them.
pub fn is_relay_envelope(frame: &[u8]) -> bool {
    // The variant index of `Relayed`, from encoding an empty one once.
    static RELAYED: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    let relayed = *RELAYED.get_or_init(|| {
        let empty = PeerMessage::Relayed {
            from: crate::ring::NodeId(0),
            to: crate::ring::NodeId(0),
            frame: Vec::new(),
        };
        postcard::to_allocvec(&empty)
            .ok()
            .and_then(|bytes| variant_index(&bytes))
    });
    match frame {
        [lo, hi, body @ ..] if u16::from_le_bytes([*lo, *hi]) == FORMAT_VERSION => {
            relayed.is_some() && variant_index(body) == relayed
        }
        _ => false,
    }
}

/// The leading varint (at most 5 bytes for a u32) of a postcard enum.
fn variant_index(body: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for (i, byte) in body.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn check_size(size_bytes: usize) -> Result<(), ProtocolError> {
    if size_bytes > FRAME_SIZE_BYTES_MAX {
        return Err(ProtocolError::FrameTooLarge {
            size_bytes: size_bytes as u64,
            limit_bytes: FRAME_SIZE_BYTES_MAX as u64,
        });
    }
    Ok(())
}
