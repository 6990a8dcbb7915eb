//! The data directory's format version: a file `FORMAT` holding `ringkv data directory
//! format N`, checked before the engine opens, so a build never opens (and perhaps
//! rewrites) files laid out by a newer one. A directory with a newer N is refused,
//! naming both versions; one with engine files but no marker was written before
//! markers existed (format 1) and is adopted: marked, then opened as before. The marker
//! is written like every durable file of the node: temp file, fsync, rename, fsync of
//! the directory.
//!
//! Bump `DATA_FORMAT_VERSION` when the files change in a way an older build would
//! misread (the engines' own formats, the `m/` records); keep reading older formats,
//! and rewrite the marker once the directory has been migrated.

use std::io::Write;
use std::path::Path;

use crate::error::{io, Error, Result};

pub const DATA_FORMAT_VERSION: u32 = 1;
pub const MARKER: &str = "FORMAT";
const PREFIX: &str = "ringkv data directory format ";
/// A marker longer than this is not one of ours.
const MARKER_BYTES_MAX: u64 = 256;

/// What `check` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// No engine files yet: marked as the current format.
    New,
    /// Engine files and no marker: written before markers existed, now marked.
    Adopted,
    /// Marked with this (current or older, readable) version.
    Marked(u32),
}

/// Checks `dir`'s format (creating and marking a new directory). Must run before
/// anything else in `dir` is opened.
pub fn check(dir: &Path) -> Result<Opened> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let path = dir.join(MARKER);
    match std::fs::metadata(&path) {
        Ok(meta) => {
            if meta.len() > MARKER_BYTES_MAX {
                return Err(unreadable(&path, "too long"));
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| unreadable(&path, &e.to_string()))?;
            let version: u32 = text
                .trim_end()
                .strip_prefix(PREFIX)
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| unreadable(&path, "not a ringkv format marker"))?;
            if version > DATA_FORMAT_VERSION {
                return Err(Error::Config(format!(
                    "{} is a data directory of format {version}; this ringkv ({}) reads \
                     format {DATA_FORMAT_VERSION} and older. Run the ringkv that wrote it \
                     (a newer release), or restore a backup into an empty directory",
                    dir.display(),
                    env!("CARGO_PKG_VERSION")
                )));
            }
            if version == 0 {
                return Err(unreadable(&path, "format 0 does not exist"));
            }
            Ok(Opened::Marked(version))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let has_data = ["lsm", "redb"].iter().any(|d| dir.join(d).exists());
            write_marker(dir)?;
            Ok(if has_data {
                Opened::Adopted
            } else {
                Opened::New
            })
        }
        Err(error) => Err(io(format!("reading {}", path.display()))(error)),
    }
}

fn unreadable(path: &Path, why: &str) -> Error {
    Error::Config(format!(
        "{}: {why}; expected \"{PREFIX}N\" (the data directory's format marker)",
        path.display()
    ))
}

fn write_marker(dir: &Path) -> Result<()> {
    let temp = dir.join(format!("{MARKER}.tmp"));
    let mut file =
        std::fs::File::create(&temp).map_err(io(format!("creating {}", temp.display())))?;
    file.write_all(format!("{PREFIX}{DATA_FORMAT_VERSION}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(format!("writing {}", temp.display())))?;
    std::fs::rename(&temp, dir.join(MARKER)).map_err(io(format!("renaming {}", temp.display())))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_adopted_marked_newer_and_garbage() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let dir = scratch.path().join("d");
        assert_eq!(check(&dir).expect("new"), Opened::New);
        assert_eq!(
            check(&dir).expect("again"),
            Opened::Marked(DATA_FORMAT_VERSION)
        );

        std::fs::remove_file(dir.join(MARKER)).expect("rm");
        std::fs::create_dir(dir.join("lsm")).expect("mkdir");
        assert_eq!(check(&dir).expect("adopted"), Opened::Adopted);
        assert_eq!(check(&dir).expect("marked"), Opened::Marked(1));

        std::fs::write(dir.join(MARKER), format!("{PREFIX}7\n")).expect("write");
        let error = check(&dir).expect_err("newer").to_string();
        assert!(
            error.contains("format 7") && error.contains("format 1"),
            "{error}"
        );

        for garbage in [
            "",
            "hello",
            "ringkv data directory format x",
            "ringkv data directory format 0",
        ] {
            std::fs::write(dir.join(MARKER), garbage).expect("write");
            assert!(check(&dir).is_err(), "{garbage:?} accepted");
        }
        std::fs::write(dir.join(MARKER), vec![b'1'; 1000]).expect("write");
        assert!(check(&dir).is_err());
    }
}
