//! redb's random-access [`StorageBackend`] over our append-only [`BlockFile`].
//!
//! redb wants `write(offset, bytes)` and `set_len`; a block file only appends. So the
//! adapter keeps redb's whole file as an in-memory *image* and persists it as a log:
//!
//! - the store file `NAME` starts with a 16-byte header, then records; each record holds
//!   the pages redb dirtied since the previous `sync_data` (plus the file length), is
//!   checksummed, and is appended and synced in one `sync_data`. Replaying the records in
//!   order on open rebuilds the image exactly as it was at the last acknowledged sync;
//! - when the log outgrows the image, `sync_data` instead writes a fresh snapshot (one
//!   record with every non-zero page) to `NAME.tmp`, syncs it and renames it over `NAME`.
//!   The rename is atomic and durable, so either the old log or the new snapshot is the
//!   file, never a mix.
//!
//! Every image a crash can leave is therefore "everything redb wrote up to one of its
//! `sync_data` calls", which a real disk may also leave and redb recovers from. The cost
//! is memory (the image, plus the store's own copy on memory stores) and one extra write
//! of the image each time the log reaches about twice its size. See docs/format/redb.md.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::StorageBackend;

use crate::storage::{BlockFile, BlockStore, Result, StorageError};

const FILE_MAGIC: &[u8; 8] = b"RKVREDB\0";
const FORMAT_VERSION: u32 = 1;
const FILE_HEADER_LEN: usize = 16;
const RECORD_MAGIC: u32 = 0x5245_4331; // "REC1"
/// magic u32, crc32 u32, payload length u64.
const RECORD_HEADER_LEN: usize = 16;
/// shrink_to u64, new_len u64.
const PAYLOAD_PREFIX_LEN: usize = 16;
/// offset u64, length u32.
const RUN_HEADER_LEN: usize = 12;
/// Granularity of dirty tracking; redb's own page size, so a page write marks one unit.
const TRACK_PAGE_BYTES: u64 = 4096;
/// Runs are split so a run length always fits its u32 field.
const RUN_BYTES_MAX: u64 = 1 << 30;
/// Snapshots are appended in pieces of about this size rather than copied whole.
const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// When `sync_data` rewrites the log as a snapshot instead of appending: once the log
/// would exceed `max(min_bytes, image_multiple × image length)`. Rewriting at twice the
/// image bounds the log to about three images and the extra writes to about one image
/// per image's worth of appended pages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SnapshotPolicy {
    pub min_bytes: u64,
    pub image_multiple: u64,
}

/// Counters the engine reports in its stats.
#[derive(Debug, Default)]
pub(crate) struct BackendCounters {
    pub store_bytes_written: AtomicU64,
    pub syncs: AtomicU64,
    pub snapshots: AtomicU64,
}

/// The image and its log; shared by the [`StoreBackend`] redb owns and the engine.
pub(crate) struct LogImage {
    store: Arc<dyn BlockStore>,
    name: String,
    tmp_name: String,
    policy: SnapshotPolicy,
    state: RwLock<State>,
    sync_serial: Mutex<()>,
    pub counters: BackendCounters,
}

struct State {
    image: Vec<u8>,
    /// Tracked pages written since the last persisted sync.
    dirty: BTreeSet<u64>,
    /// Smallest length the image had since the last persisted sync: replay must cut to it
    /// before growing again, or bytes from before a shrink would reappear.
    shrink_to: u64,
    /// `None` until the store file exists: syncs before that are volatile (see `attach`).
    log: Option<Arc<dyn BlockFile>>,
    log_len: u64,
    /// A failed append or sync leaves the durable state unknown; refuse later syncs.
    failed: Option<String>,
}

impl fmt::Debug for LogImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("LogImage")
            .field("name", &self.name)
            .field("image_len", &state.image.len())
            .field("dirty_pages", &state.dirty.len())
            .field("log_len", &state.log_len)
            .finish()
    }
}

impl LogImage {
    /// Recovers the image from `name` in `store`. Returns `fresh == true` when there was no
    /// file: the image is then empty and volatile until [`LogImage::attach`].
    pub(crate) fn open(
        store: Arc<dyn BlockStore>,
        name: &str,
        policy: SnapshotPolicy,
    ) -> Result<(Arc<Self>, bool)> {
        let tmp_name = format!("{name}.tmp");
        // A leftover temp file is a snapshot whose rename never happened: the log it was
        // meant to replace is still complete, so the temp file holds nothing acknowledged.
        store.remove(&tmp_name)?;
        let (state, fresh) = match store.open(name) {
            Ok(log) => (replay(log)?, false),
            Err(StorageError::NotFound { .. }) => (
                State {
                    image: Vec::new(),
                    dirty: BTreeSet::new(),
                    shrink_to: 0,
                    log: None,
                    log_len: 0,
                    failed: None,
                },
                true,
            ),
            Err(e) => return Err(e),
        };
        let image = Arc::new(Self {
            store,
            name: name.to_string(),
            tmp_name,
            policy,
            state: RwLock::new(state),
            sync_serial: Mutex::new(()),
            counters: BackendCounters::default(),
        });
        Ok((image, fresh))
    }

    /// Makes a fresh image durable by writing it as the first snapshot. Until then the
    /// store has no file, so a crash during redb's initialisation leaves nothing behind
    /// (redb writes its magic number last and could not open a half-initialised file).
    pub(crate) fn attach(&self) -> Result<()> {
        let _serial = self.sync_serial.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.write();
        self.write_snapshot(&mut state)
    }

    pub(crate) fn backend(self: &Arc<Self>) -> StoreBackend {
        StoreBackend(self.clone())
    }

    /// Bytes the store file occupies now.
    pub(crate) fn space_used_bytes(&self) -> u64 {
        self.read().log_len
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // Every mutation of State leaves it consistent before anything can panic.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Persists every write so far. A delta record is cut under the image's write lock
    /// but appended and synced without it, so redb's readers are not blocked for the
    /// fsync; a snapshot (rare) keeps the lock. `sync_serial` keeps syncs in order.
    fn sync(&self) -> Result<()> {
        let _serial = self.sync_serial.lock().unwrap_or_else(|p| p.into_inner());
        let (log, record) = {
            let mut state = self.write();
            if let Some(cause) = &state.failed {
                return Err(StorageError::Failed {
                    cause: cause.clone(),
                });
            }
            let Some(log) = state.log.clone() else {
                return Ok(());
            };
            if state.dirty.is_empty() && state.shrink_to == state.image.len() as u64 {
                (log, None)
            } else {
                let record = delta_record(&state);
                let threshold = self.policy.min_bytes.max(
                    self.policy
                        .image_multiple
                        .saturating_mul(state.image.len() as u64),
                );
                if state.log_len + record.len() as u64 > threshold {
                    let result = self.write_snapshot(&mut state);
                    return self.finish(&mut state, result);
                }
                // From here the pages are this record's: a later write re-marks its page.
                state.dirty.clear();
                state.shrink_to = state.image.len() as u64;
                (log, Some(record))
            }
        };
        let result = match &record {
            None => log.sync(),
            Some(record) => log.append(record).and_then(|()| log.sync()),
        };
        let mut state = self.write();
        if result.is_ok() {
            let appended = record.as_ref().map_or(0, |r| r.len() as u64);
            state.log_len += appended;
            self.counters
                .store_bytes_written
                .fetch_add(appended, Ordering::Relaxed);
        }
        self.finish(&mut state, result)
    }

    /// Counts a successful sync, or latches a failed one.
    fn finish(&self, state: &mut State, result: Result<()>) -> Result<()> {
        match result {
            Ok(()) => {
                self.counters.syncs.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // What reached the store is unknown now (fsync errors are not retryable).
                state.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Writes the whole image to the temp file, syncs it and renames it over the log.
    fn write_snapshot(&self, state: &mut State) -> Result<()> {
        let runs = nonzero_runs(&state.image);
        let payload_len = PAYLOAD_PREFIX_LEN as u64
            + runs
                .iter()
                .map(|&(start, end)| RUN_HEADER_LEN as u64 + (end - start))
                .sum::<u64>();
        let len = state.image.len() as u64;
        let mut prefix = Vec::with_capacity(PAYLOAD_PREFIX_LEN);
        prefix.extend_from_slice(&0u64.to_le_bytes());
        prefix.extend_from_slice(&len.to_le_bytes());
        // First pass: the checksum, which the record header needs before the payload.
        let mut crc = crc32fast::Hasher::new();
        crc.update(&payload_len.to_le_bytes());
        crc.update(&prefix);
        for &(start, end) in &runs {
            crc.update(&run_header(start, end));
            crc.update(&state.image[start as usize..end as usize]);
        }

        let file = self.store.create(&self.tmp_name)?;
        let mut buf = Vec::with_capacity(SNAPSHOT_CHUNK_BYTES + RUN_HEADER_LEN);
        buf.extend_from_slice(&file_header());
        buf.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
        buf.extend_from_slice(&crc.finalize().to_le_bytes());
        buf.extend_from_slice(&payload_len.to_le_bytes());
        buf.extend_from_slice(&prefix);
        let mut written = 0u64;
        for &(start, end) in &runs {
            buf.extend_from_slice(&run_header(start, end));
            let mut at = start as usize;
            while at < end as usize {
                let room = SNAPSHOT_CHUNK_BYTES.saturating_sub(buf.len()).max(1);
                let take = room.min(end as usize - at);
                buf.extend_from_slice(&state.image[at..at + take]);
                at += take;
                if buf.len() >= SNAPSHOT_CHUNK_BYTES {
                    file.append(&buf)?;
                    written += buf.len() as u64;
                    buf.clear();
                }
            }
        }
        if !buf.is_empty() {
            file.append(&buf)?;
            written += buf.len() as u64;
        }
        file.sync()?;
        self.store.rename(&self.tmp_name, &self.name)?;
        // Reopen by name: a memory store's rename moves the bytes to a new handle.
        state.log = Some(self.store.open(&self.name)?);
        state.log_len = written;
        self.counters
            .store_bytes_written
            .fetch_add(written, Ordering::Relaxed);
        state.dirty.clear();
        state.shrink_to = state.image.len() as u64;
        self.counters.snapshots.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut header = [0u8; FILE_HEADER_LEN];
    header[..8].copy_from_slice(FILE_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header
}

fn run_header(start: u64, end: u64) -> [u8; RUN_HEADER_LEN] {
    let mut header = [0u8; RUN_HEADER_LEN];
    header[..8].copy_from_slice(&start.to_le_bytes());
    // Runs never exceed RUN_BYTES_MAX, so the length fits.
    header[8..].copy_from_slice(&((end - start) as u32).to_le_bytes());
    header
}

/// One record with the dirty pages of `state`, ready to append.
fn delta_record(state: &State) -> Vec<u8> {
    let len = state.image.len() as u64;
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &page in &state.dirty {
        let start = page * TRACK_PAGE_BYTES;
        if start >= len {
            break;
        }
        let end = (start + TRACK_PAGE_BYTES).min(len);
        match runs.last_mut() {
            Some(last) if last.1 == start && end - last.0 <= RUN_BYTES_MAX => last.1 = end,
            _ => runs.push((start, end)),
        }
    }
    let mut payload = Vec::with_capacity(
        PAYLOAD_PREFIX_LEN
            + runs
                .iter()
                .map(|&(s, e)| RUN_HEADER_LEN + (e - s) as usize)
                .sum::<usize>(),
    );
    payload.extend_from_slice(&state.shrink_to.min(len).to_le_bytes());
    payload.extend_from_slice(&len.to_le_bytes());
    for &(start, end) in &runs {
        payload.extend_from_slice(&run_header(start, end));
        payload.extend_from_slice(&state.image[start as usize..end as usize]);
    }
    let payload_len = payload.len() as u64;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&payload_len.to_le_bytes());
    crc.update(&payload);
    let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    record.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    record.extend_from_slice(&crc.finalize().to_le_bytes());
    record.extend_from_slice(&payload_len.to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// Page-aligned runs of `image` that hold a non-zero byte; a snapshot skips the rest
/// (redb grows its file in large steps that stay zero until used).
fn nonzero_runs(image: &[u8]) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (i, page) in image.chunks(TRACK_PAGE_BYTES as usize).enumerate() {
        if page.iter().all(|&b| b == 0) {
            continue;
        }
        let start = i as u64 * TRACK_PAGE_BYTES;
        let end = start + page.len() as u64;
        match runs.last_mut() {
            Some(last) if last.1 == start && end - last.0 <= RUN_BYTES_MAX => last.1 = end,
            _ => runs.push((start, end)),
        }
    }
    runs
}

/// Rebuilds the image from the log file; cuts a torn last record.
fn replay(log: Arc<dyn BlockFile>) -> Result<State> {
    let bytes = log.read_all()?;
    let name = log.name().to_string();
    if bytes.len() < FILE_HEADER_LEN || &bytes[..8] != FILE_MAGIC {
        // The file only ever appears by renaming a synced snapshot, so a bad header is
        // damage, not a torn write.
        return Err(StorageError::corruption(&name, 0, "bad redb image header"));
    }
    let version = u32::from_le_bytes(le4(&bytes[8..12]));
    if version != FORMAT_VERSION {
        return Err(StorageError::UnsupportedVersion {
            file: name,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let mut image = Vec::new();
    let mut at = FILE_HEADER_LEN;
    let mut torn = false;
    while at < bytes.len() {
        match parse_record(&bytes[at..]) {
            Parsed::Record(payload, record_len) => {
                apply(&mut image, payload)
                    .map_err(|reason| StorageError::corruption(&name, at as u64, reason))?;
                at += record_len;
            }
            // Only the last record can be unsynced (each sync appends one record and waits
            // for it), so an incomplete record that ends the file is the tail of a sync
            // that never returned: nothing acknowledged is in it.
            Parsed::Torn => {
                torn = true;
                break;
            }
            Parsed::Damaged(reason) => {
                return Err(StorageError::corruption(&name, at as u64, reason));
            }
        }
    }
    if torn {
        log.truncate(at as u64)?;
        log.sync()?;
    }
    let len = image.len() as u64;
    Ok(State {
        image,
        dirty: BTreeSet::new(),
        shrink_to: len,
        log: Some(log),
        log_len: at as u64,
        failed: None,
    })
}

enum Parsed<'a> {
    Record(&'a [u8], usize),
    Torn,
    Damaged(&'static str),
}

fn parse_record(rest: &[u8]) -> Parsed<'_> {
    if rest.len() < RECORD_HEADER_LEN {
        return Parsed::Torn;
    }
    let magic = u32::from_le_bytes(le4(&rest[..4]));
    let crc = u32::from_le_bytes(le4(&rest[4..8]));
    let payload_len = u64::from_le_bytes(le8(&rest[8..16]));
    if magic != RECORD_MAGIC {
        // A file system may leave a torn tail as zeros; anything else is damage.
        return if rest.iter().all(|&b| b == 0) {
            Parsed::Torn
        } else {
            Parsed::Damaged("bad record magic")
        };
    }
    let available = (rest.len() - RECORD_HEADER_LEN) as u64;
    if payload_len > available {
        return Parsed::Torn;
    }
    let end = RECORD_HEADER_LEN + payload_len as usize;
    let payload = &rest[RECORD_HEADER_LEN..end];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&payload_len.to_le_bytes());
    hasher.update(payload);
    // A complete record with a bad checksum is damage even at the end of the file: a
    // crash leaves a prefix of the last write (an incomplete record, caught above), so
    // calling this torn would silently drop an acknowledged commit hit by bit rot.
    if hasher.finalize() != crc {
        return Parsed::Damaged("record checksum mismatch");
    }
    Parsed::Record(payload, end)
}

fn apply(image: &mut Vec<u8>, payload: &[u8]) -> std::result::Result<(), &'static str> {
    if payload.len() < PAYLOAD_PREFIX_LEN {
        return Err("record payload too short");
    }
    let shrink_to = u64::from_le_bytes(le8(&payload[..8]));
    let new_len = u64::from_le_bytes(le8(&payload[8..16]));
    let new_len = usize::try_from(new_len).map_err(|_| "image length overflows memory")?;
    let shrink_to = usize::try_from(shrink_to).unwrap_or(usize::MAX);
    if shrink_to < image.len() {
        image.truncate(shrink_to);
    }
    image.resize(new_len, 0);
    let mut at = PAYLOAD_PREFIX_LEN;
    while at < payload.len() {
        if payload.len() - at < RUN_HEADER_LEN {
            return Err("truncated run header");
        }
        let offset = u64::from_le_bytes(le8(&payload[at..at + 8]));
        let len = u32::from_le_bytes(le4(&payload[at + 8..at + 12])) as usize;
        at += RUN_HEADER_LEN;
        let offset = usize::try_from(offset).map_err(|_| "run offset overflows memory")?;
        if payload.len() - at < len {
            return Err("truncated run");
        }
        let end = offset.checked_add(len).ok_or("run end overflows")?;
        if end > new_len {
            return Err("run past image end");
        }
        image[offset..end].copy_from_slice(&payload[at..at + len]);
        at += len;
    }
    Ok(())
}

fn le4(b: &[u8]) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(&b[..4]);
    out
}

fn le8(b: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&b[..8]);
    out
}

/// What redb owns: a handle on the shared [`LogImage`].
#[derive(Debug)]
pub(crate) struct StoreBackend(Arc<LogImage>);

/// Carries our error through redb's `io::Error`, so the engine can recover it.
pub(crate) fn to_io(e: StorageError) -> io::Error {
    let kind = match &e {
        StorageError::NoSpace { .. } => io::ErrorKind::StorageFull,
        StorageError::Io { source, .. } => source.kind(),
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

fn out_of_range(what: &str, end: u64, len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{what} up to {end} past image end {len}"),
    )
}

impl StorageBackend for StoreBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.read().image.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.0.read();
        let end = offset.saturating_add(out.len() as u64);
        if end > state.image.len() as u64 {
            return Err(out_of_range("read", end, state.image.len()));
        }
        out.copy_from_slice(&state.image[offset as usize..end as usize]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len_usize = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "image too large"))?;
        let mut state = self.0.write();
        if len < state.shrink_to {
            state.shrink_to = len;
        }
        state.image.resize(len_usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync().map_err(to_io)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset.saturating_add(data.len() as u64);
        let end_usize = usize::try_from(end)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "image too large"))?;
        let mut state = self.0.write();
        // A file grows on a write past its end; redb sets the length first, but be a file.
        if end_usize > state.image.len() {
            state.image.resize(end_usize, 0);
        }
        state.image[offset as usize..end_usize].copy_from_slice(data);
        let first = offset / TRACK_PAGE_BYTES;
        let last = (end - 1) / TRACK_PAGE_BYTES;
        state.dirty.extend(first..=last);
        Ok(())
    }
}
