//! Shards: one process, several ring members (`--shards N`), each a `Node` with its own
//! engine, node thread and group commit, so a process uses as many cores as it runs
//! shards. All shards of a process name the same `NodeSpec::process`, so placement never
//! gives a key two replicas in one process: a process is one failure domain, as a crash
//! takes all its shards down at once (`ring/preference.rs`).
//!
//! What stays one per process: the RESP, WebSocket and HTTP listeners, the metrics.
//! - Client requests are routed by the ring (`Shards::route`): to the shard that is a
//!   replica of the key when there is one (it coordinates without a hop to itself), else
//!   to a shard chosen by the key's hash (spreading coordinators over the threads).
//!   Routing is only a choice of coordinator: every shard can coordinate any key.
//! - Peers dial `/peer?to=ID`; the listener hands the connection to shard `ID`, which
//!   runs the handshake as itself (`ws_endpoint.rs`). Shards of one process reach each
//!   other the same way, over loopback.
//!
//! Naming: shard 0 of process `b` is member `b` (so `--shards 1` is exactly a node of
//! builds before shards, same data directory), shard `s` is member
//! `b + s × SHARD_ID_STRIDE` with data in `<data-dir>/shard-<s>`, and the process is
//! `ProcessId(b)`. The shard count of a data directory is fixed when it is created
//! (recorded in `<data-dir>/SHARDS`): a different count would add or drop members, which
//! is a membership change, not a restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use ringkv_core::node::{ClientRequest, Node};
use ringkv_core::ring::{key_position, NodeId, RingLayout};

use super::node_host::NodeHandle;
use crate::error::{io, Error, Result};

/// Member ids of shard `s` of process `b` are `b + s × SHARD_ID_STRIDE`: readable
/// (`n1000002` is shard 1 of `n2`) and apart from any base id below the stride.
pub const SHARD_ID_STRIDE: u64 = 1_000_000;
/// Most shards one process runs.
pub const SHARDS_MAX: u32 = 64;
/// The file recording a data directory's shard count.
pub const SHARDS_FILE: &str = "SHARDS";

/// The member id of shard `shard` of the process whose shard 0 is `base`.
pub fn shard_id(base: NodeId, shard: u32) -> NodeId {
    NodeId(base.0 + u64::from(shard) * SHARD_ID_STRIDE)
}

/// Where shard `shard` keeps its data.
pub fn shard_dir(data_dir: &Path, shard: u32) -> PathBuf {
    if shard == 0 {
        data_dir.to_path_buf()
    } else {
        data_dir.join(format!("shard-{shard}"))
    }
}

/// Checks (and on first start records) the data directory's shard count. A directory
/// without the record holds one shard (every directory from before shards).
pub fn check_count(data_dir: &Path, shards: u32) -> Result<()> {
    let path = data_dir.join(SHARDS_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().parse::<u32>().map_err(|_| {
            Error::Config(format!("{}: not a shard count: {text:?}", path.display()))
        })?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(io(format!("reading {}", path.display()))(error)),
    };
    let has_data = std::fs::read_dir(data_dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    let existing = match recorded {
        Some(count) => Some(count),
        None if has_data => Some(1),
        None => None,
    };
    match existing {
        Some(count) if count != shards => Err(Error::Config(format!(
            "{} was created for {count} shard(s), not {shards}: the shard count of a data \
             directory is fixed (to change it, add a process with the new count and remove \
             this one)",
            data_dir.display()
        ))),
        Some(_) => Ok(()),
        None => {
            std::fs::create_dir_all(data_dir)
                .map_err(io(format!("creating {}", data_dir.display())))?;
            if shards > 1 {
                write_durably(&path, format!("{shards}\n").as_bytes())?;
            }
            Ok(())
        }
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension("tmp");
    let context = || format!("writing {}", path.display());
    let mut file = std::fs::File::create(&temp).map_err(io(context()))?;
    file.write_all(bytes).map_err(io(context()))?;
    file.sync_all().map_err(io(context()))?;
    std::fs::rename(&temp, path).map_err(io(context()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(context()))?;
    }
    Ok(())
}

/// The shards of this process, for routing client requests.
pub struct Shards {
    handles: Vec<NodeHandle>,
    /// The committed layout as shard 0 last saw it: routing only, never correctness.
    layout: RwLock<Option<Arc<RingLayout>>>,
}

impl Shards {
    pub fn new(handles: Vec<NodeHandle>) -> Self {
        assert!(!handles.is_empty(), "a process runs at least one shard");
        Shards {
            handles,
            layout: RwLock::new(None),
        }
    }

    pub fn handles(&self) -> &[NodeHandle] {
        &self.handles
    }

    /// Shard 0: the process's voice for status, health and attached replicas.
    pub fn first(&self) -> &NodeHandle {
        &self.handles[0]
    }

    /// The first storage failure among the shards (`fail_stop.rs`), naming the shard
    /// when the process runs several: a process whose any shard stopped is not healthy.
    pub fn storage_failure(&self) -> Option<String> {
        let several = self.handles.len() > 1;
        self.handles.iter().find_map(|handle| {
            let error = handle.storage_failure()?;
            Some(if several {
                format!("shard {}: {error}", handle.id())
            } else {
                error.to_string()
            })
        })
    }

    /// Remembers `layout` for routing.
    pub fn publish(&self, layout: RingLayout) {
        let mut slot = self.layout.write().unwrap_or_else(|e| e.into_inner());
        *slot = Some(Arc::new(layout));
    }

    /// The shard that coordinates `request`: the local replica of its key if one is, else
    /// one picked by the key's hash; shard 0 for requests without a key.
    pub fn route(&self, request: &ClientRequest) -> &NodeHandle {
        if self.handles.len() == 1 {
            return &self.handles[0];
        }
        let key = match request {
            ClientRequest::Get { key, .. }
            | ClientRequest::Put { key, .. }
            | ClientRequest::Delete { key, .. }
            | ClientRequest::PutEventual { key, .. }
            | ClientRequest::DeleteEventual { key, .. }
            | ClientRequest::Update { key, .. } => key,
            ClientRequest::Admin(_) => return &self.handles[0],
            // Any shard can coordinate a scan page: spread them by where they start.
            ClientRequest::Scan { cursor, .. } => {
                return &self.handles[(cursor % self.handles.len() as u64) as usize];
            }
        };
        self.route_key(key)
    }

    fn route_key(&self, key: &[u8]) -> &NodeHandle {
        let layout = self
            .layout
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(layout) = layout {
            for id in layout.preference_list(key) {
                if let Some(handle) = self.handles.iter().find(|h| h.id() == id) {
                    return handle;
                }
            }
        }
        let position = key_position(key);
        let index = (position % self.handles.len() as u64) as usize;
        &self.handles[index]
    }
}

/// A layout observer that publishes shard 0's committed layout to `shards` whenever its
/// layout history changes.
pub fn layout_publisher(shards: Arc<RwLock<Option<Arc<Shards>>>>) -> impl FnMut(&Node) + Send {
    let mut seen = None;
    move |node: &Node| {
        let history = node.layout_history();
        if seen == Some(history.stamp()) {
            return;
        }
        let slot = shards.read().unwrap_or_else(|e| e.into_inner());
        if let Some(shards) = slot.as_ref() {
            seen = Some(history.stamp());
            shards.publish(history.committed().clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_zero_is_the_process_id() {
        assert_eq!(shard_id(NodeId(7), 0), NodeId(7));
        assert_eq!(shard_id(NodeId(7), 2), NodeId(2_000_007));
        assert_eq!(shard_dir(Path::new("/d"), 0), PathBuf::from("/d"));
        assert_eq!(shard_dir(Path::new("/d"), 3), PathBuf::from("/d/shard-3"));
    }

    #[test]
    fn shard_count_is_fixed_at_creation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        check_count(&data, 2).expect("new directory takes 2");
        check_count(&data, 2).expect("same count again");
        let error = check_count(&data, 3).expect_err("a different count is refused");
        assert!(error.to_string().contains("created for 2 shard(s), not 3"));
        // A directory from before shards (data, no record) is one shard.
        let old = dir.path().join("old");
        std::fs::create_dir_all(old.join("lsm")).expect("mkdir");
        check_count(&old, 1).expect("one shard");
        assert!(check_count(&old, 2).is_err());
        // A new single-shard directory records nothing: it stays readable by old builds.
        let single = dir.path().join("single");
        check_count(&single, 1).expect("one shard");
        assert!(!single.join(SHARDS_FILE).exists());
        // Garbage in the record is an error, not a guess.
        std::fs::write(data.join(SHARDS_FILE), "two").expect("write");
        assert!(check_count(&data, 2).is_err());
    }
}
