//! `ringkv import FILE.jsonl` and `ringkv export`, with a progress bar on stderr.
//!
//! Line format: `{"key": "...", "value": "..."}` (UTF-8), or `key_hex`/`value_hex` for
//! bytes that are not UTF-8 (export writes those only when needed). Export collects
//! the keys every reachable node replicates (their union is every key when all nodes
//! answer), then reads each with a linearizable get, so values are current; it holds
//! all keys (not values) in memory.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use ringkv_core::node::{ClientReply, ClientRequest, Consistency};
use serde_json::{json, Value};

use super::client::{Client, ConnectOptions};
use crate::cli::{ClientArgs, ImportArgs};
use crate::error::{io, Error, Result};
use crate::wire::{ClientFrame, ServerFrame};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn field(line: &Value, name: &str) -> Option<Vec<u8>> {
    if let Some(text) = line[name].as_str() {
        return Some(text.as_bytes().to_vec());
    }
    unhex(line[format!("{name}_hex")].as_str()?)
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub(super) fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!("{what} [{{bar:40}}] {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub fn import(args: ImportArgs) -> Result<ExitCode> {
    let file =
        std::fs::File::open(&args.file).map_err(io(format!("opening {}", args.file.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let lines = BufReader::new(file).lines();
    let window = args.parallel.clamp(1, 1024);
    let (written, failed) = super::block_on(async {
        let options = ConnectOptions::from_args(&args.client)?;
        let mut client = Client::connect(&args.client.node, &options).await?;
        let progress = bar(size, "import");
        let mut in_flight: HashMap<u64, usize> = HashMap::new();
        let (mut written, mut failed) = (0u64, 0u64);
        for (number, line) in lines.enumerate() {
            let line = line.map_err(io("reading the import file"))?;
            progress.inc(line.len() as u64 + 1);
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Option<(Vec<u8>, Vec<u8>)> = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| Some((field(&v, "key")?, field(&v, "value")?)));
            let Some((key, value)) = parsed else {
                failed += 1;
                progress.println(format!(
                    "line {}: expected {{\"key\": .., \"value\": ..}}",
                    number + 1
                ));
                continue;
            };
            while in_flight.len() >= window {
                settle(
                    &mut client,
                    &mut in_flight,
                    &mut written,
                    &mut failed,
                    &progress,
                )
                .await?;
            }
            let id = client.id();
            let request = ClientRequest::Put {
                key,
                value,
                consistency: Consistency::Linearizable,
            };
            client.send(&ClientFrame::Request { id, request }).await?;
            in_flight.insert(id, number + 1);
        }
        while !in_flight.is_empty() {
            settle(
                &mut client,
                &mut in_flight,
                &mut written,
                &mut failed,
                &progress,
            )
            .await?;
        }
        progress.finish_and_clear();
        Ok::<_, Error>((written, failed))
    })??;
    if args.client.json {
        println!("{}", json!({ "written": written, "failed": failed }));
    } else {
        println!("imported {written} keys, {failed} failed");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn settle(
    client: &mut Client,
    in_flight: &mut HashMap<u64, usize>,
    written: &mut u64,
    failed: &mut u64,
    progress: &ProgressBar,
) -> Result<()> {
    match client.next().await? {
        ServerFrame::Reply { id, reply } => {
            let line = in_flight.remove(&id).unwrap_or(0);
            match reply {
                ClientReply::Done => *written += 1,
                other => {
                    *failed += 1;
                    progress.println(format!("line {line}: {other:?}"));
                }
            }
            Ok(())
        }
        ServerFrame::Refused { reason } => Err(Error::Remote(reason)),
        _ => Ok(()),
    }
}

pub fn export(args: ClientArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let count = super::block_on(async {
        let options = ConnectOptions::from_args(&args)?;
        let mut client = Client::connect(&args.node, &options).await?;
        let status = client.status().await?;
        // (member id, address): shards of one process share an address, and the id
        // picks the shard whose keys are listed.
        let mut addresses: Vec<(Option<u64>, String)> = status["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m["id"].as_u64(), m["address"].as_str()?.to_owned())))
            .collect();
        if addresses.is_empty() {
            addresses.push((None, args.node.clone()));
        }
        let mut keys = BTreeSet::new();
        for (id, address) in &addresses {
            let mut node = match Client::connect_to(address, *id, &options).await {
                Ok(node) => node,
                Err(error) => {
                    eprintln!("warning: {address}: {error}; its keys are exported only if other replicas hold them");
                    continue;
                }
            };
            let mut after = None;
            loop {
                let (page, done) = node.local_keys(after.clone(), 1024).await?;
                after = page.last().cloned().or(after);
                keys.extend(page);
                if done {
                    break;
                }
            }
        }
        let progress = bar(keys.len() as u64, "export");
        let mut out = stdout.lock();
        let mut exported = 0u64;
        for key in keys {
            progress.inc(1);
            let reply = client
                .request(ClientRequest::Get {
                    key: key.clone(),
                    consistency: Consistency::Linearizable,
                })
                .await?;
            let value = match reply {
                ClientReply::Value(Some(value)) => value,
                ClientReply::Value(None) => continue,
                other => return Err(Error::Remote(format!("reading {}: {other:?}", hex(&key)))),
            };
            let line = match (std::str::from_utf8(&key), std::str::from_utf8(&value)) {
                (Ok(k), Ok(v)) => json!({ "key": k, "value": v }),
                _ => json!({ "key_hex": hex(&key), "value_hex": hex(&value) }),
            };
            writeln!(out, "{line}").map_err(io("writing the export"))?;
            exported += 1;
        }
        progress.finish_and_clear();
        Ok::<_, Error>(exported)
    })??;
    eprintln!("exported {count} keys");
    Ok(ExitCode::SUCCESS)
}
