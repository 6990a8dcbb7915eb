use std::ops::Bound;
use std::sync::Arc;

use super::leveled::Plan;
use crate::storage::blockstore::BlockFile;
use crate::storage::error::Result;
use crate::storage::lsm::iter::LevelIter;
use crate::storage::lsm::merge::{MergeIter, Source};
use crate::storage::lsm::meta::TableMeta;
use crate::storage::lsm::sstable::{TableOptions, TableWriter};

/// A new, empty table file and its id.
pub type NewTable<'a> = &'a dyn Fn() -> Result<(u64, Arc<dyn BlockFile>)>;

/// A merge in progress. It advances in steps of bounded work so a single-threaded host
/// (wasm) can interleave it with serving requests; a native host runs it to the end on
/// its own thread. Until [`CompactionJob::step`] reports completion, nothing it wrote is
/// referenced by the manifest, so a crash mid-job leaves only orphan files.
pub struct CompactionJob {
    pub plan: Plan,
    merge: MergeIter,
    writer: Option<TableWriter>,
    /// Finished output tables with their files, ready to be opened and installed.
    pub outputs: Vec<(TableMeta, Arc<dyn BlockFile>)>,
    current_file: Option<Arc<dyn BlockFile>>,
    pub bytes_read: u64,
}

impl CompactionJob {
    pub fn new(plan: Plan) -> Self {
        let mut sources: Vec<Source> = Vec::new();
        if plan.input_level == 0 {
            for table in &plan.upper {
                sources.push(Box::new(table.reader.iter(Bound::Unbounded)));
            }
        } else {
            sources.push(Box::new(LevelIter::new(
                plan.upper.clone(),
                Bound::Unbounded,
            )));
        }
        sources.push(Box::new(LevelIter::new(
            plan.lower.clone(),
            Bound::Unbounded,
        )));
        Self {
            plan,
            merge: MergeIter::new(sources),
            writer: None,
            outputs: Vec::new(),
            current_file: None,
            bytes_read: 0,
        }
    }

    /// Merges about `budget_bytes` of input. Returns `true` when the job is complete and
    /// `outputs` holds every output table.
    pub fn step(
        &mut self,
        budget_bytes: u64,
        table_options: &TableOptions,
        table_size_bytes_target: u64,
        new_table: NewTable<'_>,
    ) -> Result<bool> {
        let mut done_bytes = 0u64;
        while done_bytes < budget_bytes {
            let Some(entry) = self.merge.next() else {
                self.finish_table()?;
                return Ok(true);
            };
            let (key, value) = entry?;
            let size = (key.len() + value.as_ref().map_or(0, Vec::len)) as u64;
            done_bytes += size;
            self.bytes_read += size;
            if value.is_none() && self.plan.drop_tombstones {
                continue;
            }
            if self.writer.is_none() {
                let (id, file) = new_table()?;
                self.writer = Some(TableWriter::new(file.clone(), id, table_options));
                self.current_file = Some(file);
            }
            if let Some(writer) = &mut self.writer {
                writer.add(&key, value.as_deref())?;
                if writer.size_estimate_bytes() >= table_size_bytes_target {
                    self.finish_table()?;
                }
            }
        }
        Ok(false)
    }

    fn finish_table(&mut self) -> Result<()> {
        if let (Some(writer), Some(file)) = (self.writer.take(), self.current_file.take()) {
            let mut meta = writer.finish()?;
            meta.level = self.plan.output_level as u32;
            self.outputs.push((meta, file));
        }
        Ok(())
    }
}
