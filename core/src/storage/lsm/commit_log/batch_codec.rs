//! A batch as a record payload: `[op_count varint]` then per op
//! `[kind u8][key_len varint][key]` and, for a put, `[value_len varint][value]`.
//!
//! The encoding is canonical (minimal varints, no trailing bytes), so decoding and
//! re-encoding a valid payload reproduces it byte for byte; the fuzz targets rely on it.

use crate::storage::{BatchOp, WriteBatch, KEY_SIZE_BYTES_MAX, VALUE_SIZE_BYTES_MAX};

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;

/// Longest LEB128 encoding of a u64.
const VARINT_SIZE_BYTES_MAX: usize = 10;

/// Exact size `encode` will produce. u64 so a huge batch cannot overflow on wasm32.
pub(super) fn encoded_len_bytes(batch: &WriteBatch) -> u64 {
    let mut len = varint_len_bytes(batch.len() as u64);
    for op in batch.ops() {
        let key_len = op.key().len() as u64;
        len += 1 + varint_len_bytes(key_len) + key_len;
        if let Some(value) = op.value() {
            let value_len = value.len() as u64;
            len += varint_len_bytes(value_len) + value_len;
        }
    }
    len
}

pub(super) fn encode(batch: &WriteBatch, out: &mut Vec<u8>) {
    put_varint(out, batch.len() as u64);
    for op in batch.ops() {
        match op {
            BatchOp::Put { key, value } => {
                out.push(OP_PUT);
                put_varint(out, key.len() as u64);
                out.extend_from_slice(key);
                put_varint(out, value.len() as u64);
                out.extend_from_slice(value);
            }
            BatchOp::Delete { key } => {
                out.push(OP_DELETE);
                put_varint(out, key.len() as u64);
                out.extend_from_slice(key);
            }
        }
    }
}

/// Decodes a payload whose CRC already verified. Every length is bounded by both its
/// limit and the bytes left before anything is copied, so hostile input allocates at
/// most about the payload's own size. The error is a reason for a `Corruption`.
pub(super) fn decode(payload: &[u8]) -> Result<WriteBatch, String> {
    let mut cursor = Cursor {
        bytes: payload,
        pos: 0,
    };
    let op_count = cursor.varint("op count")?;
    let mut batch = WriteBatch::new();
    // Each op consumes at least two bytes or fails, so this ends within payload.len() / 2
    // turns whatever op_count claims.
    for _ in 0..op_count {
        let kind_pos = cursor.pos;
        match cursor.byte("op kind")? {
            OP_PUT => {
                let key = cursor.bytes_with_len("key", KEY_SIZE_BYTES_MAX)?;
                let value = cursor.bytes_with_len("value", VALUE_SIZE_BYTES_MAX)?;
                batch.put(key, value);
            }
            OP_DELETE => {
                let key = cursor.bytes_with_len("key", KEY_SIZE_BYTES_MAX)?;
                batch.delete(key);
            }
            other => return Err(format!("payload byte {kind_pos}: unknown op kind {other}")),
        }
    }
    if cursor.pos != payload.len() {
        return Err(format!(
            "payload byte {}: {} trailing bytes after {op_count} ops",
            cursor.pos,
            payload.len() - cursor.pos
        ));
    }
    batch
        .validate()
        .map_err(|e| format!("decoded batch breaks limits: {e}"))?;
    Ok(batch)
}

fn varint_len_bytes(mut value: u64) -> u64 {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self, what: &str) -> Result<u8, String> {
        let byte = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| format!("payload byte {}: {what} runs past payload end", self.pos))?;
        self.pos += 1;
        Ok(byte)
    }

    /// LEB128, at most 10 bytes, no overflow, minimal (no trailing zero groups).
    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..VARINT_SIZE_BYTES_MAX {
            let byte = self.byte(what)?;
            let group = u64::from(byte & 0x7f);
            if i == VARINT_SIZE_BYTES_MAX - 1 && group > 1 {
                return Err(format!("payload byte {start}: {what} overflows u64"));
            }
            value |= group << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(format!(
                        "payload byte {start}: {what} is not minimally encoded"
                    ));
                }
                return Ok(value);
            }
        }
        Err(format!(
            "payload byte {start}: {what} varint longer than 10 bytes"
        ))
    }

    fn bytes_with_len(&mut self, what: &str, max_len: usize) -> Result<&'a [u8], String> {
        let len_pos = self.pos;
        let len = self.varint(what)?;
        if len > max_len as u64 {
            return Err(format!(
                "payload byte {len_pos}: {what} length {len} above limit {max_len}"
            ));
        }
        let remaining = self.bytes.len() - self.pos;
        if len > remaining as u64 {
            return Err(format!(
                "payload byte {len_pos}: {what} length {len} runs past payload end ({remaining} bytes left)"
            ));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.bytes[start..self.pos])
    }
}
