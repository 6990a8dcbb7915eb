//! Raw redb 4, as an application would use it: one table of `&[u8] -> &[u8]`, one
//! write transaction per put, default `Builder` settings (1 GiB page cache ceiling).
//!
//! Durability: YCSB puts commit with `Durability::None` (no sync; durable with the next
//! `Immediate` commit); durable puts commit with `Durability::Immediate` (redb's default:
//! fdatasync before `commit` returns).

use std::path::Path;

use anyhow::Result;
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use super::BenchEngine;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ycsb");

pub struct RawRedb {
    db: Database,
}

impl RawRedb {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = Database::create(dir.join("raw.redb"))?;
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(Self { db })
    }

    fn commit_put(&self, key: &[u8], value: &[u8], durability: Durability) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)?;
        {
            let mut table = txn.open_table(TABLE)?;
            table.insert(key, value)?;
        }
        txn.commit()?;
        Ok(())
    }
}

impl BenchEngine for RawRedb {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let value = table.get(key)?.map(|v| v.value().to_vec());
        Ok(value)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.commit_put(key, value, Durability::None)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.commit_put(key, value, Durability::Immediate)
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<usize> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        let mut n = 0;
        for entry in table.range::<&[u8]>(start..)?.take(limit) {
            let (k, v) = entry?;
            // Touch both, as a reader would.
            std::hint::black_box((k.value().len(), v.value().len()));
            n += 1;
        }
        Ok(n)
    }

    fn settle(&self) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.commit()?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.close()?;
        Ok(())
    }
}
