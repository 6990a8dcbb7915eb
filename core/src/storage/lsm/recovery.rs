//! Opening an LSM engine: load the manifest, open its tables, replay the commit logs
//! it does not cover, and write the replayed data to a table before accepting writes.
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use super::cache::BlockCache;
use super::commit_log::{replay, LogWriter};
use super::engine::{Counters, LsmEngine, MaintState, ReadState, WriterState};
use super::manifest::{read_manifest, Manifest, MANIFEST_FORMAT_VERSION};
use super::memtable::Memtable;
use super::meta::{log_file_name, parse_file_name, table_file_name, MANIFEST_TEMP_FILE};
use super::options::LsmOptions;
use super::version::Version;
use crate::storage::blockstore::{BlockStore, MemoryStore};
use crate::storage::error::{Result, StorageError};

impl LsmEngine {
    /// Opens the engine on `store`, creating an empty database if the store has none.
    ///
    /// A torn record at the end of the newest commit log (a write cut short by a crash)
    /// is dropped; any other damage fails the open with `StorageError::Corruption`.
    pub fn open(store: Arc<dyn BlockStore>, options: LsmOptions) -> Result<Self> {
        options.validate()?;
        let manifest = read_manifest(store.as_ref())?.unwrap_or(Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            next_file_id: 1,
            log_number: 0,
            last_flushed_lsn: 0,
            tables: Vec::new(),
        });
        let names = store.list()?;
        let mut max_file_id = 0u64;
        let mut logs = Vec::new();
        for name in &names {
            if let Some((id, ext)) = parse_file_name(name) {
                max_file_id = max_file_id.max(id);
                if ext == "log" && id >= manifest.log_number {
                    logs.push(id);
                }
            }
        }
        logs.sort_unstable();

        let cache = Arc::new(BlockCache::new(options.block_cache_capacity_bytes));
        let engine = LsmEngine {
            store: store.clone(),
            cache,
            next_file_id: AtomicU64::new(manifest.next_file_id.max(max_file_id + 1)),
            state: RwLock::new(Arc::new(ReadState {
                mem: Arc::new(Memtable::new(0)),
                imm: Vec::new(),
                version: Arc::new(Version::default()),
            })),
            queue: Default::default(),
            writer: Mutex::new(WriterState {
                // Never written: replaced by the new log at the end of recovery.
                log: LogWriter::new(MemoryStore::new().create("recovering")?),
                next_lsn: 1,
            }),
            maint: Mutex::new(MaintState {
                last_flushed_lsn: manifest.last_flushed_lsn,
                ..MaintState::default()
            }),
            failure: Mutex::new(None),
            counters: Counters::default(),
            options,
        };
        engine.recover(manifest, &logs)?;
        Ok(engine)
    }

    fn recover(&self, manifest: Manifest, logs: &[u64]) -> Result<()> {
        // Fewer levels than the database was written with would fold two levels into
        // one and break the one-table-per-key rule of L1 and deeper.
        if let Some(deep) = manifest
            .tables
            .iter()
            .find(|t| t.level >= self.options.levels_max)
        {
            return Err(StorageError::InvalidOptions(format!(
                "table {} is at level {}, but levels_max is {}; open with levels_max > {}",
                deep.table_id, deep.level, self.options.levels_max, deep.level
            )));
        }
        let mut tables = Vec::with_capacity(manifest.tables.len());
        for meta in manifest.tables.iter().cloned() {
            let name = table_file_name(meta.table_id);
            let file = self.store.open(&name).map_err(|e| match e {
                StorageError::NotFound { .. } => StorageError::corruption(
                    &name,
                    0,
                    "the manifest names this table but the file is missing",
                ),
                other => other,
            })?;
            tables.push(self.open_table(meta, file)?);
        }
        let version = Arc::new(Version::new(self.options.levels_max, tables));

        // Replay the logs the manifest does not cover, oldest first.
        let replayed = Arc::new(Memtable::new(0));
        let mut last_lsn = manifest.last_flushed_lsn;
        for (i, &log_id) in logs.iter().enumerate() {
            let name = log_file_name(log_id);
            let file = self.store.open(&name)?;
            let end = replay(file.as_ref(), |lsn, batch| {
                if lsn <= last_lsn {
                    return Err(StorageError::corruption(
                        &name,
                        0,
                        format!("record lsn {lsn} is not after {last_lsn}"),
                    ));
                }
                last_lsn = lsn;
                replayed.apply(lsn, batch.ops());
                Ok(())
            })?;
            // Logs are synced in full before the next one is created, so only the
            // newest can hold a write that a crash cut short.
            if end.torn_tail && i + 1 != logs.len() {
                return Err(StorageError::corruption(
                    &name,
                    end.valid_len_bytes,
                    "damaged record in a commit log that is not the newest",
                ));
            }
        }

        // Persist what was replayed as an L0 table, then start a fresh log, so the old
        // logs (and any torn tail) are never read again.
        let mut added = Vec::new();
        if !replayed.is_empty() {
            let (id, file) = self.new_table_file()?;
            let mut writer =
                super::sstable::TableWriter::new(file.clone(), id, &self.options.table);
            for entry in
                super::iter::MemtableIter::new(replayed.clone(), std::ops::Bound::Unbounded)
            {
                let (key, value) = entry?;
                writer.add(&key, value.as_deref())?;
            }
            added.push(self.open_table(writer.finish()?, file)?);
        }
        let version = Arc::new(version.edit(&HashSet::new(), added));
        let log_id = self.allocate_file_id();
        let state = ReadState {
            mem: Arc::new(Memtable::new(log_id)),
            imm: Vec::new(),
            version: version.clone(),
        };
        self.write_manifest(&self.manifest_for(&state, &version, last_lsn))?;
        super::engine::lock(&self.maint).last_flushed_lsn = last_lsn;

        // Everything not named by the manifest is garbage from before the crash.
        let live: HashSet<u64> = version.all().map(|t| t.meta.table_id).collect();
        for name in self.store.list()? {
            match parse_file_name(&name) {
                Some((id, "sst")) if !live.contains(&id) => self.store.remove(&name)?,
                Some((id, "log")) if id < log_id => self.store.remove(&name)?,
                _ => {}
            }
        }
        self.store.remove(MANIFEST_TEMP_FILE)?;

        let log = LogWriter::new(self.store.create(&log_file_name(log_id))?);
        *super::engine::lock(&self.writer) = WriterState {
            log,
            next_lsn: last_lsn + 1,
        };
        self.edit_state(|_| state);
        Ok(())
    }
}
