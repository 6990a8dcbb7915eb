//! `ringkv keys [PATTERN]`: every key of the cluster in ring order, through the scan
//! pages of one node (`ClientRequest::Scan`): a key present for the whole listing is
//! printed once, one deleted before it began never; keys changed meanwhile may or may
//! not be. `PATTERN` is a Redis glob, applied to each page.

use std::io::Write;
use std::process::ExitCode;

use ringkv_core::node::{ClientReply, ClientRequest, SCAN_COUNT_MAX};
use serde_json::json;

use super::client::{Client, ConnectOptions};
use crate::cli::KeysArgs;
use crate::error::{io, Error, Result};
use ringkv_core::glob;

pub fn run(args: KeysArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let count = super::block_on(async {
        let options = ConnectOptions::from_args(&args.client)?;
        let mut client = Client::connect(&args.client.node, &options).await?;
        let mut out = stdout.lock();
        let mut cursor = 0;
        let mut listed = 0u64;
        loop {
            let request = ClientRequest::Scan {
                cursor,
                count: SCAN_COUNT_MAX,
            };
            let (keys, next) = match client.request(request).await? {
                ClientReply::Keys { keys, cursor } => (keys, cursor),
                ClientReply::Error(error) => return Err(Error::Remote(error.to_string())),
                other => return Err(Error::Remote(format!("unexpected reply {other:?}"))),
            };
            for key in keys {
                if args
                    .pattern
                    .as_ref()
                    .is_some_and(|p| !glob::matches(p.as_bytes(), &key))
                {
                    continue;
                }
                let line = match (args.client.json, std::str::from_utf8(&key)) {
                    (false, Ok(text)) => text.to_string(),
                    (true, Ok(text)) => json!({ "key": text }).to_string(),
                    (_, Err(_)) => json!({ "key_hex": hex(&key) }).to_string(),
                };
                writeln!(out, "{line}").map_err(io("writing the keys"))?;
                listed += 1;
            }
            if next == 0 {
                return Ok::<_, Error>(listed);
            }
            cursor = next;
        }
    })??;
    eprintln!("{count} keys");
    Ok(ExitCode::SUCCESS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
