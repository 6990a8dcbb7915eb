//! What the kernel tells us about this process and a directory (Linux `/proc`).

use std::path::Path;

use anyhow::{bail, Context, Result};

/// From `/proc/self/io`. `wchar`: bytes passed to write syscalls (pwrite included), so it
/// counts every byte an engine writes even when the page cache coalesces rewrites of a
/// page. `write_bytes`: bytes this process caused to be sent to the block layer, counted
/// when page-cache pages are first dirtied.
#[derive(Debug, Clone, Copy, Default)]
pub struct IoCounters {
    pub wchar: u64,
    pub write_bytes: u64,
}

impl IoCounters {
    pub fn read() -> Result<Self> {
        let text = std::fs::read_to_string("/proc/self/io").context("reading /proc/self/io")?;
        let field = |name: &str| -> Result<u64> {
            for line in text.lines() {
                if let Some(v) = line.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
                    return Ok(v.trim().parse()?);
                }
            }
            bail!("/proc/self/io has no {name}")
        };
        Ok(Self {
            wchar: field("wchar")?,
            write_bytes: field("write_bytes")?,
        })
    }
}

/// This process's peak resident set (`VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmHWM:") {
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse()?;
            return Ok(kib * 1024);
        }
    }
    bail!("/proc/self/status has no VmHWM")
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DirSize {
    /// Blocks allocated on disk (what `du` shows): redb files are sparse where unused.
    pub allocated: u64,
    /// Sum of file lengths.
    pub apparent: u64,
}

/// Size of every file under `dir`, recursively.
pub fn dir_size(dir: &Path) -> Result<DirSize> {
    use std::os::unix::fs::MetadataExt;
    let mut total = DirSize::default();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let sub = dir_size(&entry.path())?;
            total.allocated += sub.allocated;
            total.apparent += sub.apparent;
        } else {
            total.allocated += meta.blocks() * 512;
            total.apparent += meta.len();
        }
    }
    Ok(total)
}
