//! CPU time of processes, from `/proc/<pid>/stat` (user + system, all threads, in
//! clock ticks of 10 ms on Linux with `CLK_TCK` = 100).

use anyhow::{Context, Result};

/// Linux reports `/proc/<pid>/stat` times in `USER_HZ` ticks, fixed at 100 for
/// userspace on every architecture we run on.
const TICKS_PER_S: f64 = 100.0;

/// Seconds of CPU `pid` has used so far (user + system, every thread).
pub fn cpu_s(pid: u32) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces and parentheses: fields after the last
    // ')' start at field 3 (state); utime and stime are fields 14 and 15.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/<pid>/stat")?
            .parse::<u64>()? as f64)
    };
    Ok((field(11)? + field(12)?) / TICKS_PER_S)
}

/// The CPU seconds of all `pids` together.
pub fn total_cpu_s(pids: &[u32]) -> Result<f64> {
    pids.iter().map(|&p| cpu_s(p)).sum()
}
