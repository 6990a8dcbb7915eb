//! Replay: reading a log back, and the rule that separates a torn tail from corruption.

use super::record::{decode_payload, RecordHeader, RECORD_HEADER_SIZE_BYTES};
use super::source::{FileSource, SliceSource, Source};
use crate::storage::{BlockFile, Lsn, Result, StorageError, WriteBatch};

/// How replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEnd {
    /// Bytes of whole, valid records from the start of the file. The engine truncates
    /// the file to this length before appending to it again.
    pub valid_len_bytes: u64,
    /// Whether bytes after `valid_len_bytes` were dropped as a torn tail.
    pub torn_tail: bool,
    pub last_lsn: Option<Lsn>,
    pub records: u64,
}

/// What the bytes at one offset hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRead {
    Record {
        lsn: Lsn,
        batch: WriteBatch,
        len_bytes: u64,
    },
    /// No bytes left.
    End,
    /// The rest is a torn tail: a header cut short by EOF, a record whose declared end
    /// lies past EOF, or nothing but zero bytes.
    Torn,
}

/// Reads every record of `file` in order, calling `apply(lsn, batch)` for each.
///
/// A torn tail (see [`RecordRead::Torn`]) ends replay with `torn_tail: true` and
/// `valid_len_bytes` at the start of the torn record. Any other damage, including a bad
/// checksum in the last record and an LSN not above the one before, is
/// `StorageError::Corruption` naming the file and the damaged record's start offset.
/// Batches before the damage have been applied by then; the caller abandons the open.
/// Errors from `apply` are returned as they are.
pub fn replay(
    file: &dyn BlockFile,
    mut apply: impl FnMut(Lsn, WriteBatch) -> Result<()>,
) -> Result<ReplayEnd> {
    let mut source = FileSource::new(file)?;
    let mut end = ReplayEnd {
        valid_len_bytes: 0,
        torn_tail: false,
        last_lsn: None,
        records: 0,
    };
    loop {
        let offset = end.valid_len_bytes;
        match read_record(&mut source, offset)? {
            RecordRead::End => return Ok(end),
            RecordRead::Torn => {
                end.torn_tail = true;
                return Ok(end);
            }
            RecordRead::Record {
                lsn,
                batch,
                len_bytes,
            } => {
                if let Some(prev) = end.last_lsn {
                    if lsn <= prev {
                        return Err(StorageError::corruption(
                            source.name(),
                            offset,
                            format!("record lsn {lsn} is not above the previous lsn {prev}"),
                        ));
                    }
                }
                apply(lsn, batch)?;
                end.last_lsn = Some(lsn);
                end.records += 1;
                end.valid_len_bytes += len_bytes;
            }
        }
    }
}

/// Decodes the record at the start of `bytes`, treating the end of `bytes` as EOF (so
/// the torn-tail rule applies as in [`replay`]). Errors name the file `<buffer>`.
pub fn decode_record(bytes: &[u8]) -> Result<RecordRead> {
    let mut source = SliceSource {
        name: "<buffer>",
        bytes,
    };
    read_record(&mut source, 0)
}

/// The torn-tail rule. Under our crash model a store keeps a prefix of unsynced appends,
/// so a crash can only cut the last write short: the header is incomplete or the
/// declared end lies past EOF. Zero-filled tails (file systems that grow the size before
/// the data lands) are accepted as torn too, but only when *every* byte from the record
/// to EOF is zero; a verified header can never be all zeros, so this never hides a record.
fn read_record(source: &mut impl Source, offset: u64) -> Result<RecordRead> {
    let left_bytes = source.len_bytes().saturating_sub(offset);
    if left_bytes == 0 {
        return Ok(RecordRead::End);
    }
    if left_bytes < RECORD_HEADER_SIZE_BYTES as u64 {
        return Ok(RecordRead::Torn);
    }
    let mut header_bytes = [0u8; RECORD_HEADER_SIZE_BYTES];
    header_bytes.copy_from_slice(source.bytes(offset, RECORD_HEADER_SIZE_BYTES)?);
    let header = match RecordHeader::decode(&header_bytes) {
        Ok(header) => header,
        Err(_) if source.all_zero_from(offset)? => return Ok(RecordRead::Torn),
        Err(reason) => return Err(StorageError::corruption(source.name(), offset, reason)),
    };
    if header.record_len_bytes() > left_bytes {
        return Ok(RecordRead::Torn);
    }
    let payload_offset = offset + RECORD_HEADER_SIZE_BYTES as u64;
    // The header bounded the length and the whole record is inside the source, so this
    // allocates no more than the record's real size.
    let payload = source.bytes(payload_offset, header.payload_len_bytes as usize)?;
    let batch = decode_payload(&header, payload)
        .map_err(|reason| StorageError::corruption(source.name(), offset, reason))?;
    Ok(RecordRead::Record {
        lsn: header.lsn,
        batch,
        len_bytes: header.record_len_bytes(),
    })
}
