//! `SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]` and `KEYS pattern` over the
//! cluster's scan pages (`ClientRequest::Scan`; guarantees in
//! `ringkv_core::node::coordinator::scan`): the cursor is a ring position, `0` starts
//! and ends a scan, and `MATCH` filters each page after it is read (so, as in Redis, a
//! page may come back empty with a non-zero cursor). `KEYS` walks every page and is
//! refused past [`KEYS_MAX`] keys.

use std::sync::Arc;

use ringkv_core::node::{ClientReply, ClientRequest, SCAN_COUNT_MAX};

use super::reply;
use crate::server::context::Context;
use crate::server::exec;
use ringkv_core::glob;

/// Keys `KEYS` returns at most; past that it answers an error (use `SCAN`).
pub const KEYS_MAX: usize = 100_000;
/// `COUNT` when none is given (Redis's default).
const COUNT_DEFAULT: u32 = 10;

/// A parsed `SCAN`.
pub struct ScanArgs {
    cursor: u64,
    count: u32,
    pattern: Option<Vec<u8>>,
    /// `TYPE` other than `string`: every ringkv value is a string, so nothing matches.
    other_type: bool,
}

/// Parses `SCAN`'s arguments (`args[0]` is the command name).
pub fn parse(args: &[Vec<u8>]) -> Result<ScanArgs, Vec<u8>> {
    let cursor = std::str::from_utf8(args.get(1).map(Vec::as_slice).unwrap_or_default())
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| reply::error("ERR invalid cursor"))?;
    let mut parsed = ScanArgs {
        cursor,
        count: COUNT_DEFAULT,
        pattern: None,
        other_type: false,
    };
    let mut rest = args[2..].chunks(2);
    for option in rest.by_ref() {
        let [name, value] = option else {
            return Err(reply::error("ERR syntax error"));
        };
        match name.to_ascii_uppercase().as_slice() {
            b"MATCH" => parsed.pattern = Some(value.clone()),
            b"COUNT" => {
                parsed.count = std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.parse::<u32>().ok())
                    .filter(|count| *count >= 1)
                    .ok_or_else(|| reply::error("ERR value is not an integer or out of range"))?
                    .min(SCAN_COUNT_MAX);
            }
            b"TYPE" => parsed.other_type = !value.eq_ignore_ascii_case(b"string"),
            _ => return Err(reply::error("ERR syntax error")),
        }
    }
    Ok(parsed)
}

/// One `SCAN` page: `[cursor, [keys...]]`.
pub async fn page(ctx: Arc<Context>, args: ScanArgs) -> Vec<u8> {
    match read_page(&ctx, args.cursor, args.count).await {
        Ok((keys, cursor)) => {
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|key| !args.other_type && wanted(args.pattern.as_deref(), key))
                .map(|key| reply::bulk(Some(&key)))
                .collect();
            reply::array(&[
                reply::bulk(Some(cursor.to_string().as_bytes())),
                reply::array(&keys),
            ])
        }
        Err(error) => error,
    }
}

/// `KEYS pattern`: every page, filtered, up to [`KEYS_MAX`] keys.
pub async fn keys(ctx: Arc<Context>, pattern: Vec<u8>) -> Vec<u8> {
    let mut found = Vec::new();
    let mut cursor = 0;
    loop {
        let (keys, next) = match read_page(&ctx, cursor, SCAN_COUNT_MAX).await {
            Ok(page) => page,
            Err(error) => return error,
        };
        found.extend(
            keys.into_iter()
                .filter(|key| wanted(Some(&pattern), key))
                .map(|key| reply::bulk(Some(&key))),
        );
        if found.len() > KEYS_MAX {
            return reply::error(&format!(
                "ERR KEYS would return more than {KEYS_MAX} keys; use SCAN"
            ));
        }
        if next == 0 {
            return reply::array(&found);
        }
        cursor = next;
    }
}

fn wanted(pattern: Option<&[u8]>, key: &[u8]) -> bool {
    pattern.is_none_or(|pattern| pattern == b"*" || glob::matches(pattern, key))
}

async fn read_page(ctx: &Context, cursor: u64, count: u32) -> Result<(Vec<Vec<u8>>, u64), Vec<u8>> {
    let request = ClientRequest::Scan { cursor, count };
    match exec::execute(ctx.route(&request), &ctx.metrics, request).await {
        ClientReply::Keys { keys, cursor } => Ok((keys, cursor)),
        ClientReply::Error(error) => Err(reply::cluster_error(&error)),
        _ => Err(reply::error("ERR unexpected reply")),
    }
}
