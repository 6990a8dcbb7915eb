//! A 3-member etcd cluster on loopback for `ringkv-bench cluster`: Debian's
//! `etcd-server` with its defaults, except what a cluster on one machine must set
//! (names, free ports, `--initial-cluster`, a data directory each). Every member is
//! killed when the handle drops; each one's log goes to `<dir>/<name>.log`.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use super::procs::{free_port, Proc};

pub struct EtcdCluster {
    pub procs: Vec<Proc>,
    /// `127.0.0.1:<client port>` of each member.
    pub endpoints: Vec<String>,
}

impl EtcdCluster {
    pub fn start(dir: &Path, n: usize) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<Result<_>>()?;
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{}=http://127.0.0.1:{peer}", i + 1))
            .collect();
        let token = format!("ringkv-bench-{}", std::process::id());
        let mut procs = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("m{}", i + 1);
            let log = File::create(dir.join(format!("{name}.log")))?;
            let child = Command::new("etcd")
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(dir.join(&name))
                .args([
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args([
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", &token])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting etcd (apt-get install etcd-server)")?;
            procs.push(Proc(child));
        }
        let endpoints = ports
            .iter()
            .map(|(client, _)| format!("127.0.0.1:{client}"))
            .collect();
        Ok(Self { procs, endpoints })
    }

    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }
}
