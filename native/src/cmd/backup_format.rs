//! The on-disk format of a backup directory (`ringkv backup` writes it, `ringkv
//! restore` checks and reads it). Byte layout (docs/format.md, "Backup directory"):
//!
//! - `manifest.json`, written last (temp file, fsync, rename): format name and version,
//!   when the backup started and finished, the layout it was taken against, which
//!   members were read, record counts, and every data file with its size, record count
//!   and SHA-256. No manifest means the backup never finished.
//! - `data-NNNNNN.rkvb`: `MAGIC (8 bytes) | format version (u32 LE)`, then records
//!   `length (u32 LE) | postcard(SyncEntry)`, one per key, strictly ascending by
//!   (kind, key) across all files (registers before eventual keys). A record is the
//!   merged state of the key: a register with its ABD tag (tombstones included) or an
//!   eventual key's sibling state (the same `SyncEntry` the sync stream carries).
//!
//! Reading refuses, with an error naming the file: a missing or extra data file, a
//! size or checksum that differs from the manifest, a bad header, a record that does
//! not decode or is longer than `RECORD_BYTES_MAX`, records out of order, and counts
//! that differ from the manifest's.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ringkv_core::node::backup::entry_order;
use ringkv_core::protocol::SyncEntry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io, Error, Result};

pub const FORMAT_NAME: &str = "ringkv-backup";
/// Bumped on any change a reader of the previous version could misread.
pub const FORMAT_VERSION: u32 = 1;
pub const MAGIC: &[u8; 8] = b"RKVBDATA";
const HEADER_BYTES: u64 = 12;
pub const MANIFEST: &str = "manifest.json";
/// A data file is closed once it passes this; the next record starts a new one.
pub const DATA_FILE_BYTES_TARGET: u64 = 64 << 20;
/// Largest record accepted: a key (≤ 8 KiB) with a value (≤ 1 MiB) or a sibling state
/// (bounded to fit a 2 MiB frame), with room to spare.
pub const RECORD_BYTES_MAX: u32 = 4 << 20;
/// Largest manifest read (a manifest lists one entry per 64 MiB file).
const MANIFEST_BYTES_MAX: u64 = 16 << 20;
/// Most data files a manifest may list.
const FILES_MAX: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Registers holding a value.
    pub registers: u64,
    /// Deleted registers (kept so a backup records deletes; restore skips them).
    pub tombstones: u64,
    /// Eventual-mode keys (their sibling states).
    pub eventual: u64,
}

impl Counts {
    pub fn add(&mut self, entry: &SyncEntry) {
        match entry {
            SyncEntry::Register { value: Some(_), .. } => self.registers += 1,
            SyncEntry::Register { value: None, .. } => self.tombstones += 1,
            SyncEntry::Eventual { .. } => self.eventual += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.registers + self.tombstones + self.eventual
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub name: String,
    pub bytes: u64,
    pub records: u64,
    /// Lower-case hex SHA-256 of the whole file.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRead {
    pub id: u64,
    pub address: String,
    /// Records this member streamed.
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberMissed {
    pub id: u64,
    pub address: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The `ringkv` version that wrote it.
    pub written_by: String,
    /// Wall-clock time the backup started: every write acknowledged before it is in
    /// the backup.
    pub started_at_unix_ms: u64,
    pub finished_at_unix_ms: u64,
    /// The committed layout the coverage check used (ringkv has no cluster id; the
    /// layout version and member ids identify the cluster's state).
    pub layout_version: u64,
    pub replicas: usize,
    pub members: Vec<u64>,
    pub read: Vec<MemberRead>,
    pub missed: Vec<MemberMissed>,
    pub counts: Counts,
    pub files: Vec<DataFile>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Backup(format!("{}: {what}", path.display()))
}

/// Writes records into data files of about `DATA_FILE_BYTES_TARGET` each.
pub struct DataWriter {
    dir: PathBuf,
    current: Option<OpenFile>,
    files: Vec<DataFile>,
    counts: Counts,
    last: Option<(u8, Vec<u8>)>,
}

struct OpenFile {
    name: String,
    out: BufWriter<File>,
    hash: Sha256,
    bytes: u64,
    records: u64,
}

impl DataWriter {
    pub fn new(dir: &Path) -> DataWriter {
        DataWriter {
            dir: dir.to_path_buf(),
            current: None,
            files: Vec::new(),
            counts: Counts::default(),
            last: None,
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Appends one merged record; records must come in strictly ascending order.
    pub fn write(&mut self, entry: &SyncEntry) -> Result<()> {
        let (kind, key) = entry_order(entry);
        if self
            .last
            .as_ref()
            .is_some_and(|(k, last)| (*k, last.as_slice()) >= (kind, key))
        {
            return Err(Error::Backup(
                "records reached the writer out of order".into(),
            ));
        }
        self.last = Some((kind, key.to_vec()));
        let body = postcard::to_allocvec(entry)
            .map_err(|e| Error::Backup(format!("encoding a record: {e}")))?;
        let length = u32::try_from(body.len())
            .ok()
            .filter(|n| *n <= RECORD_BYTES_MAX)
            .ok_or_else(|| Error::Backup(format!("a record of {} bytes", body.len())))?;
        if self
            .current
            .as_ref()
            .is_some_and(|f| f.bytes >= DATA_FILE_BYTES_TARGET)
        {
            self.close_current()?;
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        let file = self
            .current
            .as_mut()
            .ok_or_else(|| Error::Backup("no data file open".into()))?;
        let path = self.dir.join(&file.name);
        for part in [&length.to_le_bytes()[..], &body] {
            file.out
                .write_all(part)
                .map_err(io(format!("writing {}", path.display())))?;
            file.hash.update(part);
            file.bytes += part.len() as u64;
        }
        file.records += 1;
        self.counts.add(entry);
        Ok(())
    }

    fn open_next(&mut self) -> Result<()> {
        let name = format!("data-{:06}.rkvb", self.files.len() + 1);
        let path = self.dir.join(&name);
        let file = File::create_new(&path).map_err(io(format!("creating {}", path.display())))?;
        let mut open = OpenFile {
            name,
            out: BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
            records: 0,
        };
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        open.out
            .write_all(&header)
            .map_err(io(format!("writing {}", path.display())))?;
        open.hash.update(&header);
        open.bytes = header.len() as u64;
        self.current = Some(open);
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        let Some(file) = self.current.take() else {
            return Ok(());
        };
        let path = self.dir.join(&file.name);
        let inner = file
            .out
            .into_inner()
            .map_err(|e| Error::Backup(format!("writing {}: {}", path.display(), e.error())))?;
        inner
            .sync_all()
            .map_err(io(format!("syncing {}", path.display())))?;
        self.files.push(DataFile {
            name: file.name,
            bytes: file.bytes,
            records: file.records,
            sha256: hex(&file.hash.finalize()),
        });
        Ok(())
    }

    /// Closes the last file; returns every file written and the record counts.
    pub fn finish(mut self) -> Result<(Vec<DataFile>, Counts)> {
        self.close_current()?;
        Ok((self.files, self.counts))
    }
}

/// Writes the manifest last and atomically: a backup directory with a manifest is a
/// finished backup.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::Backup(format!("encoding the manifest: {e}")))?;
    let temp = dir.join(format!("{MANIFEST}.tmp"));
    let mut file = File::create(&temp).map_err(io(format!("creating {}", temp.display())))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(io(format!("writing {}", temp.display())))?;
    std::fs::rename(&temp, dir.join(MANIFEST))
        .map_err(io(format!("renaming {}", temp.display())))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))
}

/// Reads and checks the manifest: present, parseable, this format, a version this
/// build reads, a sane file list.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let file = File::open(&path).map_err(|e| {
        Error::Backup(format!(
            "{}: {e}; not a backup, or one that never finished (the manifest is written last)",
            path.display()
        ))
    })?;
    let mut text = Vec::new();
    file.take(MANIFEST_BYTES_MAX + 1)
        .read_to_end(&mut text)
        .map_err(io(format!("reading {}", path.display())))?;
    if text.len() as u64 > MANIFEST_BYTES_MAX {
        return Err(corrupt(
            &path,
            format!("larger than {MANIFEST_BYTES_MAX} bytes"),
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| corrupt(&path, format!("not a backup manifest ({e})")))?;
    if manifest.format != FORMAT_NAME {
        return Err(corrupt(
            &path,
            format!("format {:?}, expected {FORMAT_NAME:?}", manifest.format),
        ));
    }
    if manifest.format_version != FORMAT_VERSION {
        return Err(corrupt(
            &path,
            format!(
                "backup format version {}; this ringkv ({}) reads version {FORMAT_VERSION}",
                manifest.format_version,
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    if manifest.files.len() > FILES_MAX {
        return Err(corrupt(
            &path,
            format!("lists {} files", manifest.files.len()),
        ));
    }
    for (index, file) in manifest.files.iter().enumerate() {
        let expected = format!("data-{:06}.rkvb", index + 1);
        if file.name != expected {
            return Err(corrupt(
                &path,
                format!(
                    "file {} is named {:?}, expected {expected:?}",
                    index + 1,
                    file.name
                ),
            ));
        }
    }
    let listed: u64 = manifest.files.iter().map(|f| f.records).sum();
    if listed != manifest.counts.total() {
        return Err(corrupt(
            &path,
            format!(
                "its files hold {listed} records but its counts add up to {}",
                manifest.counts.total()
            ),
        ));
    }
    Ok(manifest)
}

/// Checks the whole backup before anything is restored: every listed file exists with
/// its size and checksum, no unlisted data file is present, every record decodes, in
/// order, and the counts match. Returns the manifest.
pub fn verify(dir: &Path) -> Result<Manifest> {
    let manifest = read_manifest(dir)?;
    let listed: std::collections::BTreeSet<&str> =
        manifest.files.iter().map(|f| f.name.as_str()).collect();
    let entries = std::fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("data-") && !listed.contains(name.as_str()) {
            return Err(corrupt(
                &entry.path(),
                "a data file the manifest does not list (a backup mixed with another?)",
            ));
        }
    }
    let mut counts = Counts::default();
    let mut reader = Records::open(dir, &manifest);
    while let Some(entry) = reader.next_record()? {
        counts.add(&entry);
    }
    if counts != manifest.counts {
        return Err(Error::Backup(format!(
            "{}: records {counts:?} differ from the manifest's {:?}",
            dir.display(),
            manifest.counts
        )));
    }
    Ok(manifest)
}

/// Every record of a backup in order, each file checked against the manifest as it is
/// read (the checksum is only known at a file's end: `verify` reads everything once
/// before a restore writes anything).
pub struct Records<'a> {
    dir: PathBuf,
    files: std::slice::Iter<'a, DataFile>,
    current: Option<OpenRead<'a>>,
    last: Option<(u8, Vec<u8>)>,
}

struct OpenRead<'a> {
    path: PathBuf,
    info: &'a DataFile,
    input: BufReader<File>,
    hash: Sha256,
    read: u64,
    records: u64,
}

impl<'a> Records<'a> {
    pub fn open(dir: &Path, manifest: &'a Manifest) -> Records<'a> {
        Records {
            dir: dir.to_path_buf(),
            files: manifest.files.iter(),
            current: None,
            last: None,
        }
    }

    pub fn next_record(&mut self) -> Result<Option<SyncEntry>> {
        loop {
            if self.current.is_none() {
                let Some(info) = self.files.next() else {
                    return Ok(None);
                };
                self.current = Some(OpenRead::open(&self.dir, info)?);
            }
            let Some(file) = self.current.as_mut() else {
                continue;
            };
            match file.next()? {
                Some(entry) => {
                    let (kind, key) = entry_order(&entry);
                    if self
                        .last
                        .as_ref()
                        .is_some_and(|(k, last)| (*k, last.as_slice()) >= (kind, key))
                    {
                        return Err(corrupt(&file.path, "records out of order"));
                    }
                    self.last = Some((kind, key.to_vec()));
                    return Ok(Some(entry));
                }
                None => {
                    if let Some(file) = self.current.take() {
                        file.finish()?;
                    }
                }
            }
        }
    }
}

impl<'a> OpenRead<'a> {
    fn open(dir: &Path, info: &'a DataFile) -> Result<OpenRead<'a>> {
        let path = dir.join(&info.name);
        let file = File::open(&path).map_err(|e| {
            corrupt(
                &path,
                format!("{e} (the manifest lists it: the backup is incomplete)"),
            )
        })?;
        let size = file
            .metadata()
            .map_err(io(format!("reading {}", path.display())))?
            .len();
        if size != info.bytes {
            return Err(corrupt(
                &path,
                format!(
                    "{size} bytes, the manifest says {} (truncated or altered)",
                    info.bytes
                ),
            ));
        }
        let mut open = OpenRead {
            path,
            info,
            input: BufReader::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            read: 0,
            records: 0,
        };
        let mut header = [0u8; HEADER_BYTES as usize];
        open.fill(&mut header)?;
        if &header[..8] != MAGIC {
            return Err(corrupt(
                &open.path,
                "not a ringkv backup data file (bad magic)",
            ));
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version != FORMAT_VERSION {
            return Err(corrupt(
                &open.path,
                format!(
                    "data format version {version}; this ringkv reads version {FORMAT_VERSION}"
                ),
            ));
        }
        Ok(open)
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        self.input
            .read_exact(buf)
            .map_err(|e| corrupt(&self.path, format!("ends early at byte {}: {e}", self.read)))?;
        self.hash.update(&*buf);
        self.read += buf.len() as u64;
        Ok(())
    }

    fn next(&mut self) -> Result<Option<SyncEntry>> {
        if self.read == self.info.bytes {
            return Ok(None);
        }
        let mut length = [0u8; 4];
        self.fill(&mut length)?;
        let length = u32::from_le_bytes(length);
        if length > RECORD_BYTES_MAX || u64::from(length) > self.info.bytes - self.read {
            return Err(corrupt(
                &self.path,
                format!(
                    "a record of {length} bytes at byte {} runs past its bounds",
                    self.read - 4
                ),
            ));
        }
        let mut body = vec![0u8; length as usize];
        self.fill(&mut body)?;
        let entry = match postcard::take_from_bytes::<SyncEntry>(&body) {
            Ok((entry, [])) => entry,
            _ => {
                return Err(corrupt(
                    &self.path,
                    format!(
                        "the record at byte {} does not decode",
                        self.read - 4 - u64::from(length)
                    ),
                ))
            }
        };
        self.records += 1;
        Ok(Some(entry))
    }

    fn finish(self) -> Result<()> {
        let sum = hex(&self.hash.finalize());
        if sum != self.info.sha256 {
            return Err(corrupt(
                &self.path,
                format!(
                    "SHA-256 {sum}, the manifest says {} (corrupted)",
                    self.info.sha256
                ),
            ));
        }
        if self.records != self.info.records {
            return Err(corrupt(
                &self.path,
                format!(
                    "{} records, the manifest says {}",
                    self.records, self.info.records
                ),
            ));
        }
        Ok(())
    }
}
