//! A cgroup v1 `cpu` group with a CFS quota: one process in it gets at most `cpus` of
//! CPU time, so one machine stands in for several smaller ones. The group is created
//! by the bench and removed when dropped (after its processes are gone).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

const ROOT: &str = "/sys/fs/cgroup/cpu";
const PERIOD_US: u64 = 100_000;

pub struct CpuGroup {
    path: PathBuf,
}

impl CpuGroup {
    /// Refuses with a clear error where cgroup v1's `cpu` controller is not writable
    /// (not root, cgroup v2 only, a container without it).
    pub fn create(name: &str, cpus: f64) -> Result<Self> {
        if !(cpus > 0.0 && cpus <= 1024.0) {
            bail!("a CPU quota must be in (0, 1024] CPUs, not {cpus}");
        }
        let root = PathBuf::from(ROOT);
        if !root.join("cpu.cfs_quota_us").exists() {
            bail!("{ROOT} is not a cgroup v1 cpu controller: cannot confine processes to a CPU quota here");
        }
        let path = root.join(name);
        if path.exists() {
            // Left by an earlier run that was killed; empty groups can be removed.
            std::fs::remove_dir(&path).with_context(|| {
                format!(
                    "{} exists and cannot be removed (processes still in it?)",
                    path.display()
                )
            })?;
        }
        std::fs::create_dir(&path).with_context(|| {
            format!(
                "creating {} (needs root and a writable cgroup v1 cpu controller)",
                path.display()
            )
        })?;
        let group = Self { path };
        // A float quota in µs per period; at least the kernel's 1 ms minimum.
        let quota_us = ((cpus * PERIOD_US as f64) as u64).max(1000);
        group.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
        group.write("cpu.cfs_quota_us", &quota_us.to_string())?;
        Ok(group)
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        std::fs::write(self.path.join(file), value)
            .with_context(|| format!("writing {value} to {}/{file}", self.path.display()))
    }

    /// Moves process `pid` (all its threads) into the group.
    pub fn add(&self, pid: u32) -> Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        // The processes were killed and reaped before (callers drop clusters first);
        // a removal that still fails leaves an empty group behind, which the next run
        // removes.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("could not remove cgroup {}", self.path.display());
    }
}
