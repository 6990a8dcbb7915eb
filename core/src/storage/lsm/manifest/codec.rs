//! The manifest's bytes: `[magic 8][format_version u32][body_len u64][body][crc32 u32]`,
//! little-endian, the CRC over everything before it. The 20-byte header and the trailing
//! CRC keep this shape in every format version (only the body changes), so the CRC is
//! checked before the version: a damaged version field reads as corruption, and a sound
//! file from a newer build as `UnsupportedVersion`.

use super::Manifest;
use crate::storage::lsm::meta::TableMeta;
use crate::storage::{Result, StorageError, KEY_SIZE_BYTES_MAX};

pub const MANIFEST_FORMAT_VERSION: u32 = 1;

const MAGIC: [u8; 8] = *b"RKVMANIF";
const HEADER_SIZE_BYTES: usize = 20;
const CRC_SIZE_BYTES: usize = 4;
/// A table with empty keys: id, level, size, entries, tombstones, two key lengths.
const TABLE_SIZE_BYTES_MIN: usize = 8 + 4 + 8 + 8 + 8 + 4 + 4;

pub(super) fn encode(manifest: &Manifest) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&manifest.next_file_id.to_le_bytes());
    body.extend_from_slice(&manifest.log_number.to_le_bytes());
    body.extend_from_slice(&manifest.last_flushed_lsn.to_le_bytes());
    body.extend_from_slice(&(manifest.tables.len() as u64).to_le_bytes());
    for table in &manifest.tables {
        body.extend_from_slice(&table.table_id.to_le_bytes());
        body.extend_from_slice(&table.level.to_le_bytes());
        body.extend_from_slice(&table.size_bytes.to_le_bytes());
        body.extend_from_slice(&table.entry_count.to_le_bytes());
        body.extend_from_slice(&table.tombstone_count.to_le_bytes());
        // Keys are at most KEY_SIZE_BYTES_MAX (write_manifest checks), so u32 holds them.
        body.extend_from_slice(&(table.smallest_key.len() as u32).to_le_bytes());
        body.extend_from_slice(&table.smallest_key);
        body.extend_from_slice(&(table.largest_key.len() as u32).to_le_bytes());
        body.extend_from_slice(&table.largest_key);
    }
    let mut out = Vec::with_capacity(HEADER_SIZE_BYTES + body.len() + CRC_SIZE_BYTES);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

pub(super) fn decode(file_name: &str, bytes: &[u8]) -> Result<Manifest> {
    let corrupt =
        |offset: usize, reason: String| StorageError::corruption(file_name, offset as u64, reason);
    if bytes.len() < HEADER_SIZE_BYTES + CRC_SIZE_BYTES {
        return Err(corrupt(
            0,
            format!("{} bytes is too short for a manifest", bytes.len()),
        ));
    }
    let mut header = Fields { bytes, pos: 0 };
    if header.take(MAGIC.len()).map_err(|(at, r)| corrupt(at, r))? != MAGIC {
        return Err(corrupt(0, "bad magic: not a ringkv manifest".to_string()));
    }
    let version = header.u32().map_err(|(at, r)| corrupt(at, r))?;
    let body_len_bytes = header.u64().map_err(|(at, r)| corrupt(at, r))?;
    let actual_body_len_bytes = bytes.len() - HEADER_SIZE_BYTES - CRC_SIZE_BYTES;
    if body_len_bytes != actual_body_len_bytes as u64 {
        return Err(corrupt(
            12,
            format!("body length {body_len_bytes} but the file holds {actual_body_len_bytes}"),
        ));
    }
    let crc_at = bytes.len() - CRC_SIZE_BYTES;
    let mut stored_crc = [0u8; CRC_SIZE_BYTES];
    stored_crc.copy_from_slice(&bytes[crc_at..]);
    let stored_crc = u32::from_le_bytes(stored_crc);
    let actual_crc = crc32fast::hash(&bytes[..crc_at]);
    if stored_crc != actual_crc {
        return Err(corrupt(
            crc_at,
            format!("checksum mismatch (stored {stored_crc:#010x}, computed {actual_crc:#010x})"),
        ));
    }
    if version != MANIFEST_FORMAT_VERSION {
        return Err(StorageError::UnsupportedVersion {
            file: file_name.to_string(),
            found: version,
            supported: MANIFEST_FORMAT_VERSION,
        });
    }
    let mut body = Fields {
        bytes: &bytes[..crc_at],
        pos: HEADER_SIZE_BYTES,
    };
    decode_body(&mut body, version).map_err(|(at, r)| corrupt(at, r))
}

fn decode_body(body: &mut Fields<'_>, version: u32) -> Result<Manifest, (usize, String)> {
    let next_file_id = body.u64()?;
    let log_number = body.u64()?;
    let last_flushed_lsn = body.u64()?;
    let count_at = body.pos;
    let table_count = body.u64()?;
    // Bound the count by the bytes left before allocating for it.
    let tables_max = (body.bytes.len() - body.pos) / TABLE_SIZE_BYTES_MIN;
    if table_count > tables_max as u64 {
        return Err((
            count_at,
            format!("table count {table_count} does not fit in the {tables_max} tables' worth of bytes left"),
        ));
    }
    let mut tables = Vec::with_capacity(table_count as usize);
    for _ in 0..table_count {
        tables.push(TableMeta {
            table_id: body.u64()?,
            level: body.u32()?,
            size_bytes: body.u64()?,
            entry_count: body.u64()?,
            tombstone_count: body.u64()?,
            smallest_key: body.key()?,
            largest_key: body.key()?,
        });
    }
    if body.pos != body.bytes.len() {
        return Err((
            body.pos,
            format!(
                "{} trailing bytes after the tables",
                body.bytes.len() - body.pos
            ),
        ));
    }
    Ok(Manifest {
        format_version: version,
        next_file_id,
        log_number,
        last_flushed_lsn,
        tables,
    })
}

/// Reads fixed-width fields; errors carry the offset of the field that failed.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], (usize, String)> {
        let left = self.bytes.len() - self.pos;
        if len > left {
            return Err((
                self.pos,
                format!("field of {len} bytes runs past the end ({left} left)"),
            ));
        }
        let start = self.pos;
        self.pos += len;
        Ok(&self.bytes[start..self.pos])
    }

    fn u32(&mut self) -> Result<u32, (usize, String)> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(word))
    }

    fn u64(&mut self) -> Result<u64, (usize, String)> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(word))
    }

    fn key(&mut self) -> Result<Vec<u8>, (usize, String)> {
        let len_at = self.pos;
        let len = self.u32()? as usize;
        if len > KEY_SIZE_BYTES_MAX {
            return Err((
                len_at,
                format!("key length {len} above limit {KEY_SIZE_BYTES_MAX}"),
            ));
        }
        Ok(self.take(len)?.to_vec())
    }
}
