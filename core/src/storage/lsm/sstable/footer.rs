//! The fixed-size footer at the end of every table: where the index, bloom filter and
//! properties sections are. Magic and version sit at fixed positions from the end so a
//! future version may change everything before them.

use super::coding::ByteReader;
use super::frame::Section;
use crate::storage::error::{Result, StorageError};

pub(crate) const FOOTER_SIZE_BYTES: usize = 64;
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const MAGIC: [u8; 8] = *b"RKVTABLE";

/// Layout: index, bloom, properties sections (offset u64 LE, size u64 LE each; 48 bytes),
/// format version u32 LE, CRC32 of the 52 bytes before it u32 LE, magic (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Footer {
    pub(crate) index: Section,
    pub(crate) bloom: Section,
    pub(crate) properties: Section,
}

impl Footer {
    pub(crate) fn encode(&self) -> [u8; FOOTER_SIZE_BYTES] {
        let mut buf = Vec::with_capacity(FOOTER_SIZE_BYTES);
        for section in [self.index, self.bloom, self.properties] {
            buf.extend_from_slice(&section.offset.to_le_bytes());
            buf.extend_from_slice(&section.size_bytes.to_le_bytes());
        }
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf.extend_from_slice(&MAGIC);
        let mut out = [0u8; FOOTER_SIZE_BYTES];
        out.copy_from_slice(&buf);
        out
    }

    /// Checks magic, then version (so a newer table reports `UnsupportedVersion`, not
    /// corruption), then the CRC, then that the sections lie in order (index, bloom,
    /// properties) between the data blocks and the footer at `footer_offset`.
    pub(crate) fn decode(
        bytes: &[u8; FOOTER_SIZE_BYTES],
        file: &str,
        footer_offset: u64,
    ) -> Result<Self> {
        let corrupt = |reason: &str| {
            StorageError::corruption(file, footer_offset, format!("footer: {reason}"))
        };
        let malformed = |_| corrupt("truncated");
        let mut reader = ByteReader::at(bytes, 48);
        let version = reader.u32_le().map_err(malformed)?;
        let crc = reader.u32_le().map_err(malformed)?;
        if reader.bytes(8).map_err(malformed)? != MAGIC {
            return Err(corrupt("bad magic (not a ringkv table)"));
        }
        if version != FORMAT_VERSION {
            return Err(StorageError::UnsupportedVersion {
                file: file.to_string(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if crc32fast::hash(&bytes[..52]) != crc {
            return Err(corrupt("checksum mismatch"));
        }
        let mut reader = ByteReader::new(bytes);
        let mut section = || -> Result<Section> {
            Ok(Section {
                offset: reader.u64_le().map_err(malformed)?,
                size_bytes: reader.u64_le().map_err(malformed)?,
            })
        };
        let footer = Self {
            index: section()?,
            bloom: section()?,
            properties: section()?,
        };
        let in_order = footer.index.end() == Some(footer.bloom.offset)
            && footer.bloom.end() == Some(footer.properties.offset)
            && footer.properties.end() == Some(footer_offset);
        if !in_order {
            return Err(corrupt("sections out of order or range"));
        }
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footer() -> Footer {
        Footer {
            index: Section {
                offset: 100,
                size_bytes: 20,
            },
            bloom: Section {
                offset: 120,
                size_bytes: 6,
            },
            properties: Section {
                offset: 126,
                size_bytes: 40,
            },
        }
    }

    #[test]
    fn round_trips() {
        assert_eq!(
            Footer::decode(&footer().encode(), "t", 166).expect("valid"),
            footer()
        );
    }

    #[test]
    fn checks_magic_version_crc_and_layout() {
        let encoded = footer().encode();
        let mut bad_magic = encoded;
        bad_magic[63] ^= 1;
        assert!(Footer::decode(&bad_magic, "t", 166).is_err_and(|e| e.is_corruption()));
        let mut new_version = encoded;
        new_version[48] = 2;
        assert!(matches!(
            Footer::decode(&new_version, "t", 166),
            Err(StorageError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            })
        ));
        let mut bad_offset = encoded;
        bad_offset[0] ^= 1;
        assert!(Footer::decode(&bad_offset, "t", 166).is_err_and(|e| e.is_corruption()));
        assert!(Footer::decode(&encoded, "t", 167).is_err_and(|e| e.is_corruption()));
    }
}
