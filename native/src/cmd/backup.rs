//! `ringkv backup --to DIR` and `ringkv restore --from DIR` (design: ARCHITECTURE.md,
//! "Backup and restore"; files: `backup_format`).
//!
//! Backup: note the start time, read the committed layout, stream every member's
//! records (`ClientFrame::Backup` pages: registers with tags, tombstones included,
//! then eventual sibling states), merge the streams per key in key order (the largest
//! tag, merged sibling states: `ringkv_core::node::backup`), and write the merged
//! records to data files, then the manifest. Memory is one page per member plus one
//! data-file buffer: the streams arrive sorted, so the merge never holds more. A
//! member that cannot be read is named; the backup goes on only if the members read
//! hold a majority of every range's replicas (otherwise it names the ranges), which is
//! what makes every write acknowledged before the start part of it.
//!
//! Restore: check the whole backup first (manifest, sizes, checksums, every record,
//! order, counts), then refuse a cluster that holds any live key unless `--force`,
//! then write through the normal client path: linearizable puts for registers
//! (tombstones skipped: the target has nothing to delete), blind eventual writes for
//! each sibling of an eventual key (so concurrent siblings stay siblings).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use ringkv_core::node::backup::{entry_order, merge_entry, ranges_without_majority};
use ringkv_core::node::{ClientError, ClientReply, ClientRequest, Consistency};
use ringkv_core::protocol::SyncEntry;
use ringkv_core::ring::{NodeId, RingLayout, TokenRange};
use serde_json::Value;
use tokio::sync::mpsc;

use super::backup_format::{self as format, DataWriter, Manifest, MemberMissed, MemberRead};
use super::client::{Client, ConnectOptions};
use super::transfer::bar;
use crate::cli::{BackupArgs, RestoreArgs};
use crate::error::{io, Error, Result};
use crate::wire::{ClientFrame, ServerFrame};

/// Records asked for per page (the server caps pages at 256 records or 1 MiB).
const PAGE_RECORDS: u32 = 256;
/// Pages buffered per member stream ahead of the merge.
const PAGES_AHEAD: usize = 2;
/// Ranges named in an error before "and N more".
const RANGES_SHOWN: usize = 8;
/// Attempts per restore write that was refused without effect (or, for a register,
/// may have taken effect: rewriting the same value is harmless).
const WRITE_ATTEMPTS_MAX: u32 = 8;
const RETRY_DELAY_MAX: Duration = Duration::from_secs(1);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Members (committed and pending layouts) with the address `/status` gives for each.
fn member_addresses(status: &Value) -> BTreeMap<u64, Option<String>> {
    status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let id = m["id"].as_u64()?;
            Some((id, m["address"].as_str().map(str::to_owned)))
        })
        .collect()
}

fn describe_ranges(ranges: &[(TokenRange, Vec<NodeId>)]) -> String {
    let mut out: Vec<String> = ranges
        .iter()
        .take(RANGES_SHOWN)
        .map(|(range, owners)| {
            let owners: Vec<String> = owners.iter().map(ToString::to_string).collect();
            format!(
                "({:#018x}, {:#018x}] on {}",
                range.start_exclusive,
                range.end_inclusive,
                owners.join(",")
            )
        })
        .collect();
    if ranges.len() > RANGES_SHOWN {
        out.push(format!("and {} more", ranges.len() - RANGES_SHOWN));
    }
    out.join("; ")
}

fn describe_missed(missed: &[MemberMissed]) -> String {
    missed
        .iter()
        .map(|m| {
            format!(
                "n{} ({}): {}",
                m.id,
                m.address.as_deref().unwrap_or("no address"),
                m.reason
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Refuses unless `read` holds a majority of every range's replicas in `layout`.
fn check_coverage(
    layout: &RingLayout,
    read: &BTreeSet<NodeId>,
    missed: &[MemberMissed],
    doing: &str,
) -> Result<()> {
    let uncovered = ranges_without_majority(layout, read);
    if uncovered.is_empty() {
        return Ok(());
    }
    Err(Error::Backup(format!(
        "cannot {doing}: members not read: {}; without them {} of {} ranges have no \
         majority of their replicas read, so acknowledged writes could be missed: {}",
        describe_missed(missed),
        uncovered.len(),
        layout.segments().len(),
        describe_ranges(&uncovered)
    )))
}

/// Connects to every member; returns the connected ones and the ones that failed.
async fn connect_members(
    addresses: &BTreeMap<u64, Option<String>>,
    options: &ConnectOptions,
) -> (Vec<(u64, String, Client)>, Vec<MemberMissed>) {
    let mut connected = Vec::new();
    let mut missed = Vec::new();
    for (&id, address) in addresses {
        let Some(address) = address.clone() else {
            missed.push(MemberMissed {
                id,
                address: None,
                reason: "no address known".into(),
            });
            continue;
        };
        if ringkv_core::protocol::wire::relay_host(&address).is_some() {
            missed.push(MemberMissed {
                id,
                address: Some(address),
                reason: "a replica attached through a relay (it accepts no connections)".into(),
            });
            continue;
        }
        match Client::connect_to(&address, Some(id), options).await {
            Ok(client) if client.node == id => connected.push((id, address, client)),
            Ok(client) => missed.push(MemberMissed {
                id,
                address: Some(address),
                reason: format!("the node there is n{}", client.node),
            }),
            Err(error) => missed.push(MemberMissed {
                id,
                address: Some(address),
                reason: error.to_string(),
            }),
        }
    }
    (connected, missed)
}

/// One member's stream of pages, fetched ahead of the merge.
async fn stream_member(mut client: Client, pages: mpsc::Sender<Result<Vec<SyncEntry>>>) {
    let mut cursor = None;
    loop {
        match client.backup_page(cursor, PAGE_RECORDS).await {
            Ok((entries, next)) => {
                if pages.send(Ok(entries)).await.is_err() {
                    return;
                }
                match next {
                    Some(next) => cursor = Some(next),
                    None => return,
                }
            }
            Err(error) => {
                let _ = pages.send(Err(error)).await;
                return;
            }
        }
    }
}

struct Source {
    id: u64,
    address: String,
    pages: mpsc::Receiver<Result<Vec<SyncEntry>>>,
    head: VecDeque<SyncEntry>,
    done: bool,
    failed: Option<String>,
    records: u64,
    last: Option<(u8, Vec<u8>)>,
}

impl Source {
    /// Refills `head` until it holds a record or the stream ended.
    async fn fill(&mut self) {
        while self.head.is_empty() && !self.done {
            match self.pages.recv().await {
                Some(Ok(entries)) => {
                    for entry in entries {
                        let (kind, key) = entry_order(&entry);
                        // The merge relies on each stream being sorted; a stream that is
                        // not is dropped (and its member counted as not read).
                        if self
                            .last
                            .as_ref()
                            .is_some_and(|(k, last)| (*k, last.as_slice()) >= (kind, key))
                        {
                            self.fail("its stream came out of order".into());
                            return;
                        }
                        self.last = Some((kind, key.to_vec()));
                        self.records += 1;
                        self.head.push_back(entry);
                    }
                }
                Some(Err(error)) => self.fail(error.to_string()),
                None => self.done = true,
            }
        }
    }

    fn fail(&mut self, reason: String) {
        self.failed = Some(reason);
        self.done = true;
        self.head.clear();
    }
}

fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    let template = format!("{{spinner}} {what} {{pos}} keys ({{per_sec}}) {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Prepares the target directory: it must be new or empty (a backup never mixes with
/// another's files). Returns whether it was created.
fn prepare_dir(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Backup(format!(
                    "{} is not empty; a backup goes into a new or empty directory",
                    dir.display()
                )));
            }
            Ok(false)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
            Ok(true)
        }
        Err(error) => Err(io(format!("reading {}", dir.display()))(error)),
    }
}

pub fn backup(args: BackupArgs) -> Result<ExitCode> {
    // Every write acknowledged before this instant must be in the backup: everything
    // below reads after it.
    let started_at = unix_ms();
    let clock = Instant::now();
    let created = prepare_dir(&args.to)?;
    let result = super::block_on(take_backup(&args, started_at))?;
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(error) => {
            // Leave nothing that looks like a backup behind.
            if let Ok(entries) = std::fs::read_dir(&args.to) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with("data-") || name.starts_with(format::MANIFEST) {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
            if created {
                let _ = std::fs::remove_dir(&args.to);
            }
            return Err(error);
        }
    };
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let read: Vec<String> = manifest.read.iter().map(|m| format!("n{}", m.id)).collect();
    if args.client.json {
        println!(
            "{}",
            serde_json::json!({
                "dir": args.to.display().to_string(),
                "counts": manifest.counts,
                "files": manifest.files.len(),
                "bytes": bytes,
                "read": read,
                "missed": manifest.missed,
                "seconds": clock.elapsed().as_secs_f64(),
            })
        );
    } else {
        let c = &manifest.counts;
        println!(
            "backup of {} keys ({} registers, {} tombstones, {} eventual) from {} into {}: \
             {} files, {} bytes, {:.1} s",
            c.total(),
            c.registers,
            c.tombstones,
            c.eventual,
            read.join(","),
            args.to.display(),
            manifest.files.len(),
            bytes,
            clock.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn take_backup(args: &BackupArgs, started_at: u64) -> Result<Manifest> {
    let options = ConnectOptions::from_args(&args.client)?;
    let mut seed = Client::connect(&args.client.node, &options).await?;
    let layout = seed.layout().await?;
    let status = seed.status().await?;
    drop(seed);
    let mut addresses = member_addresses(&status);
    for id in layout.nodes().keys() {
        addresses.entry(id.0).or_insert(None);
    }
    let (connected, mut missed) = connect_members(&addresses, &options).await;
    let reachable: BTreeSet<NodeId> = connected.iter().map(|(id, ..)| NodeId(*id)).collect();
    check_coverage(&layout, &reachable, &missed, "take a complete backup")?;
    for m in &missed {
        eprintln!(
            "warning: member n{} not read ({}); the members read hold a majority of every range",
            m.id, m.reason
        );
    }

    let mut sources = Vec::new();
    for (id, address, client) in connected {
        let (send, pages) = mpsc::channel(PAGES_AHEAD);
        tokio::spawn(stream_member(client, send));
        sources.push(Source {
            id,
            address,
            pages,
            head: VecDeque::new(),
            done: false,
            failed: None,
            records: 0,
            last: None,
        });
    }
    let progress = spinner("backup");
    let mut writer = DataWriter::new(&args.to);
    loop {
        for source in &mut sources {
            source.fill().await;
        }
        let Some(next) = sources
            .iter()
            .filter_map(|s| s.head.front().map(entry_order))
            .min()
            .map(|(kind, key)| (kind, key.to_vec()))
        else {
            break;
        };
        let mut merged: Option<SyncEntry> = None;
        for source in &mut sources {
            let same = source
                .head
                .front()
                .is_some_and(|e| entry_order(e) == (next.0, next.1.as_slice()));
            if !same {
                continue;
            }
            if let Some(entry) = source.head.pop_front() {
                match merged.as_mut() {
                    None => merged = Some(entry),
                    Some(into) => {
                        merge_entry(into, entry);
                    }
                }
            }
        }
        if let Some(entry) = merged {
            writer.write(&entry)?;
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    let (files, counts) = writer.finish()?;

    // A member whose stream broke off was not read completely: recheck coverage.
    let mut read = Vec::new();
    let mut complete = BTreeSet::new();
    for source in sources {
        match source.failed {
            Some(reason) => missed.push(MemberMissed {
                id: source.id,
                address: Some(source.address),
                reason: format!("its stream failed: {reason}"),
            }),
            None => {
                complete.insert(NodeId(source.id));
                read.push(MemberRead {
                    id: source.id,
                    address: source.address,
                    records: source.records,
                });
            }
        }
    }
    check_coverage(&layout, &complete, &missed, "finish the backup")?;
    let manifest = Manifest {
        format: format::FORMAT_NAME.into(),
        format_version: format::FORMAT_VERSION,
        written_by: format!("ringkv {}", env!("CARGO_PKG_VERSION")),
        started_at_unix_ms: started_at,
        finished_at_unix_ms: unix_ms(),
        layout_version: layout.version(),
        replicas: layout.replicas(),
        members: layout.nodes().keys().map(|id| id.0).collect(),
        read,
        missed,
        counts,
        files,
    };
    format::write_manifest(&args.to, &manifest)?;
    Ok(manifest)
}

/// A live record on some member: the cluster is not empty. `None` if every member read
/// holds none.
async fn find_live_key(connected: &mut [(u64, String, Client)]) -> Result<Option<(u64, Vec<u8>)>> {
    for (id, _, client) in connected.iter_mut() {
        let mut cursor = None;
        loop {
            let (entries, next) = client.backup_page(cursor, PAGE_RECORDS).await?;
            for entry in entries {
                match entry {
                    SyncEntry::Register {
                        key,
                        value: Some(_),
                        ..
                    } => return Ok(Some((*id, key))),
                    SyncEntry::Eventual { key, state } if state.values().any(Option::is_some) => {
                        return Ok(Some((*id, key)))
                    }
                    _ => {}
                }
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(None)
}

/// The writes that restore one record (none for a tombstone).
fn writes_for(entry: SyncEntry) -> Vec<ClientRequest> {
    match entry {
        SyncEntry::Register {
            key,
            value: Some(value),
            ..
        } => vec![ClientRequest::Put {
            key,
            value,
            consistency: Consistency::Linearizable,
        }],
        SyncEntry::Register { value: None, .. } => Vec::new(),
        SyncEntry::Eventual { key, state } => {
            // A state of deletes only restores as nothing; otherwise every sibling,
            // deletes included, is written blind so they stay concurrent.
            if !state.values().any(Option::is_some) {
                return Vec::new();
            }
            state
                .into_values()
                .map(|value| match value {
                    Some(value) => ClientRequest::PutEventual {
                        key: key.clone(),
                        value,
                        context: None,
                    },
                    None => ClientRequest::DeleteEventual {
                        key: key.clone(),
                        context: None,
                    },
                })
                .collect()
        }
    }
}

struct InFlight {
    request: ClientRequest,
    attempts: u32,
}

#[derive(Default)]
struct Tally {
    registers: u64,
    eventual_values: u64,
    failed: u64,
}

/// Whether `reply` to `request` should be retried: refused without effect, or (a
/// register put) possibly applied, where writing the same value again is harmless.
/// An eventual write that may have applied is not retried: a retry would add a
/// second sibling of the same value.
fn retryable(request: &ClientRequest, reply: &ClientReply) -> bool {
    match reply {
        ClientReply::Error(ClientError::Unavailable { .. } | ClientError::Overloaded) => true,
        ClientReply::Error(ClientError::Indeterminate { .. }) => {
            matches!(request, ClientRequest::Put { .. })
        }
        _ => false,
    }
}

async fn settle(
    client: &mut Client,
    in_flight: &mut HashMap<u64, InFlight>,
    tally: &mut Tally,
    progress: &ProgressBar,
) -> Result<()> {
    let (id, reply) = match client.next().await? {
        ServerFrame::Reply { id, reply } => (id, reply),
        ServerFrame::Refused { reason } => return Err(Error::Remote(reason)),
        _ => return Ok(()),
    };
    let Some(mut pending) = in_flight.remove(&id) else {
        return Ok(());
    };
    match reply {
        ClientReply::Done => match pending.request {
            ClientRequest::Put { .. } => tally.registers += 1,
            _ => tally.eventual_values += 1,
        },
        reply if retryable(&pending.request, &reply) && pending.attempts < WRITE_ATTEMPTS_MAX => {
            pending.attempts += 1;
            let delay = Duration::from_millis(50 << pending.attempts.min(5)).min(RETRY_DELAY_MAX);
            tokio::time::sleep(delay).await;
            let id = client.id();
            client
                .send(&ClientFrame::Request {
                    id,
                    request: pending.request.clone(),
                })
                .await?;
            in_flight.insert(id, pending);
        }
        other => {
            tally.failed += 1;
            progress.println(format!(
                "key {}: {other:?}",
                String::from_utf8_lossy(pending.request.key())
            ));
        }
    }
    Ok(())
}

pub fn restore(args: RestoreArgs) -> Result<ExitCode> {
    let clock = Instant::now();
    // Nothing is written before the whole backup has been read and checked.
    let manifest = format::verify(&args.from)?;
    eprintln!(
        "verified {}: {} keys in {} files (taken {} ms after the epoch, layout v{})",
        args.from.display(),
        manifest.counts.total(),
        manifest.files.len(),
        manifest.started_at_unix_ms,
        manifest.layout_version
    );
    let tally = super::block_on(write_backup(&args, &manifest))??;
    let c = &manifest.counts;
    if args.client.json {
        println!(
            "{}",
            serde_json::json!({
                "registers": tally.registers,
                "eventual_values": tally.eventual_values,
                "eventual_keys": c.eventual,
                "tombstones_skipped": c.tombstones,
                "failed": tally.failed,
                "seconds": clock.elapsed().as_secs_f64(),
            })
        );
    } else {
        println!(
            "restored {} registers and {} eventual keys ({} sibling values), skipped {} \
             tombstones, {} writes failed, {:.1} s",
            tally.registers,
            c.eventual,
            tally.eventual_values,
            c.tombstones,
            tally.failed,
            clock.elapsed().as_secs_f64()
        );
    }
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn write_backup(args: &RestoreArgs, manifest: &Manifest) -> Result<Tally> {
    let options = ConnectOptions::from_args(&args.client)?;
    let mut client = Client::connect(&args.client.node, &options).await?;
    if !args.force {
        let layout = client.layout().await?;
        let status = client.status().await?;
        let mut addresses = member_addresses(&status);
        for id in layout.nodes().keys() {
            addresses.entry(id.0).or_insert(None);
        }
        let (mut connected, missed) = connect_members(&addresses, &options).await;
        let reachable: BTreeSet<NodeId> = connected.iter().map(|(id, ..)| NodeId(*id)).collect();
        check_coverage(&layout, &reachable, &missed, "check the cluster is empty")?;
        if let Some((id, key)) = find_live_key(&mut connected).await? {
            return Err(Error::Backup(format!(
                "the cluster is not empty (n{id} holds key {:?}); restore loads a backup \
                 into a new or empty cluster (--force writes over what is there)",
                String::from_utf8_lossy(&key)
            )));
        }
    }
    let window = args.parallel.clamp(1, 1024);
    let progress = bar(manifest.counts.total(), "restore");
    let mut records = format::Records::open(&args.from, manifest);
    let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
    let mut tally = Tally::default();
    while let Some(entry) = records.next_record()? {
        progress.inc(1);
        for request in writes_for(entry) {
            while in_flight.len() >= window {
                settle(&mut client, &mut in_flight, &mut tally, &progress).await?;
            }
            let id = client.id();
            client
                .send(&ClientFrame::Request {
                    id,
                    request: request.clone(),
                })
                .await?;
            in_flight.insert(
                id,
                InFlight {
                    request,
                    attempts: 0,
                },
            );
        }
    }
    while !in_flight.is_empty() {
        settle(&mut client, &mut in_flight, &mut tally, &progress).await?;
    }
    progress.finish_and_clear();
    Ok(tally)
}
