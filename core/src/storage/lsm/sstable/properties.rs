//! Table properties: what the manifest's `TableMeta` is rebuilt from, plus the table id
//! so a file opened under the wrong id is caught.
//!
//! Contents: `table_id: u64 LE ‖ entry_count: u64 LE ‖ tombstone_count: u64 LE ‖
//! smallest_key_len: varint ‖ smallest_key ‖ largest_key_len: varint ‖ largest_key`.

use super::coding::{put_varint, ByteReader, Decoded};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Properties {
    pub(crate) table_id: u64,
    pub(crate) entry_count: u64,
    pub(crate) tombstone_count: u64,
    pub(crate) smallest_key: Vec<u8>,
    pub(crate) largest_key: Vec<u8>,
}

impl Properties {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf =
            Vec::with_capacity(24 + 20 + self.smallest_key.len() + self.largest_key.len());
        buf.extend_from_slice(&self.table_id.to_le_bytes());
        buf.extend_from_slice(&self.entry_count.to_le_bytes());
        buf.extend_from_slice(&self.tombstone_count.to_le_bytes());
        for key in [&self.smallest_key, &self.largest_key] {
            put_varint(&mut buf, key.len() as u64);
            buf.extend_from_slice(key);
        }
        buf
    }

    pub(crate) fn decode(contents: &[u8]) -> Decoded<Self> {
        let mut reader = ByteReader::new(contents);
        let properties = Self {
            table_id: reader.u64_le()?,
            entry_count: reader.u64_le()?,
            tombstone_count: reader.u64_le()?,
            smallest_key: reader.length_prefixed()?.to_vec(),
            largest_key: reader.length_prefixed()?.to_vec(),
        };
        reader.expect_end()?;
        if properties.tombstone_count > properties.entry_count {
            return Err(reader.malformed("more tombstones than entries"));
        }
        if properties.entry_count > 0 && properties.smallest_key > properties.largest_key {
            return Err(reader.malformed("smallest key after largest key"));
        }
        Ok(properties)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_trailing_bytes() {
        let properties = Properties {
            table_id: 7,
            entry_count: 3,
            tombstone_count: 1,
            smallest_key: b"a".to_vec(),
            largest_key: b"zz".to_vec(),
        };
        let mut encoded = properties.encode();
        assert_eq!(Properties::decode(&encoded), Ok(properties));
        encoded.push(0);
        assert!(Properties::decode(&encoded).is_err());
        assert!(Properties::decode(&encoded[..10]).is_err());
    }
}
