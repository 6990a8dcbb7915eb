//! One log record: a fixed header that can be trusted on its own (it has its own CRC)
//! followed by the encoded batch.
//!
//! The header CRC is what lets replay tell a torn tail from corruption: once a complete
//! header verifies, its `payload_len` is known to be what the writer wrote, so a record
//! whose declared end lies past EOF can only be a write cut short by a crash, and a bad
//! byte anywhere inside the file is always caught (a flipped length can no longer pose
//! as a torn tail).

use super::batch_codec;
use crate::storage::{Lsn, Result, StorageError, WriteBatch, BATCH_SIZE_BYTES_MAX};

/// `[payload_len u32][lsn u64][payload_crc u32][header_crc u32]`, all little-endian.
pub const RECORD_HEADER_SIZE_BYTES: usize = 20;

/// Largest payload a record may declare. A batch that passes `WriteBatch::validate` has at
/// most `BATCH_SIZE_BYTES_MAX` of keys and values; the rest is framing (a kind byte and
/// up to two varints per op), which only a batch of millions of tiny ops pushes past this
/// bound. The writer refuses such a batch (`TooLarge`) so replay never meets one.
pub const PAYLOAD_SIZE_BYTES_MAX: usize = BATCH_SIZE_BYTES_MAX + 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordHeader {
    pub payload_len_bytes: u32,
    pub lsn: Lsn,
    pub payload_crc: u32,
}

impl RecordHeader {
    pub fn encode(&self) -> [u8; RECORD_HEADER_SIZE_BYTES] {
        let mut out = [0u8; RECORD_HEADER_SIZE_BYTES];
        out[0..4].copy_from_slice(&self.payload_len_bytes.to_le_bytes());
        out[4..12].copy_from_slice(&self.lsn.to_le_bytes());
        out[12..16].copy_from_slice(&self.payload_crc.to_le_bytes());
        let header_crc = crc32fast::hash(&out[0..16]);
        out[16..20].copy_from_slice(&header_crc.to_le_bytes());
        out
    }

    /// Verifies the header CRC and the length bound. The error is a reason for a
    /// `Corruption`, which the caller locates.
    pub fn decode(bytes: &[u8; RECORD_HEADER_SIZE_BYTES]) -> Result<Self, String> {
        let stored_crc = le_u32(bytes, 16);
        let actual_crc = crc32fast::hash(&bytes[0..16]);
        if stored_crc != actual_crc {
            return Err(format!(
                "record header checksum mismatch (stored {stored_crc:#010x}, computed {actual_crc:#010x})"
            ));
        }
        let header = RecordHeader {
            payload_len_bytes: le_u32(bytes, 0),
            lsn: le_u64(bytes, 4),
            payload_crc: le_u32(bytes, 12),
        };
        if header.payload_len_bytes as usize > PAYLOAD_SIZE_BYTES_MAX {
            return Err(format!(
                "record payload length {} above limit {PAYLOAD_SIZE_BYTES_MAX}",
                header.payload_len_bytes
            ));
        }
        Ok(header)
    }

    pub fn record_len_bytes(&self) -> u64 {
        RECORD_HEADER_SIZE_BYTES as u64 + u64::from(self.payload_len_bytes)
    }
}

/// Appends one record for `batch` to `out`; returns the record's size. On error `out`
/// is unchanged.
pub(super) fn encode_record(lsn: Lsn, batch: &WriteBatch, out: &mut Vec<u8>) -> Result<u64> {
    let payload_len_bytes = batch_codec::encoded_len_bytes(batch);
    let too_large = || StorageError::TooLarge {
        what: "encoded batch",
        size_bytes: payload_len_bytes,
        limit_bytes: PAYLOAD_SIZE_BYTES_MAX as u64,
    };
    if payload_len_bytes > PAYLOAD_SIZE_BYTES_MAX as u64 {
        return Err(too_large());
    }
    let payload_len_u32 = u32::try_from(payload_len_bytes).map_err(|_| too_large())?;
    let start = out.len();
    out.reserve(RECORD_HEADER_SIZE_BYTES + payload_len_u32 as usize);
    out.extend_from_slice(&[0u8; RECORD_HEADER_SIZE_BYTES]);
    batch_codec::encode(batch, out);
    let payload = &out[start + RECORD_HEADER_SIZE_BYTES..];
    debug_assert_eq!(payload.len() as u64, payload_len_bytes);
    let header = RecordHeader {
        payload_len_bytes: payload_len_u32,
        lsn,
        payload_crc: crc32fast::hash(payload),
    };
    out[start..start + RECORD_HEADER_SIZE_BYTES].copy_from_slice(&header.encode());
    Ok(header.record_len_bytes())
}

/// Checks the payload against the header's CRC and decodes the batch.
pub(super) fn decode_payload(header: &RecordHeader, payload: &[u8]) -> Result<WriteBatch, String> {
    let actual_crc = crc32fast::hash(payload);
    if actual_crc != header.payload_crc {
        return Err(format!(
            "record payload checksum mismatch (stored {:#010x}, computed {actual_crc:#010x})",
            header.payload_crc
        ));
    }
    batch_codec::decode(payload)
}

fn le_u32(bytes: &[u8; RECORD_HEADER_SIZE_BYTES], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn le_u64(bytes: &[u8; RECORD_HEADER_SIZE_BYTES], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}
