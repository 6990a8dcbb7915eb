//! `ringkv put|get|del|incr|cas`.

use std::process::ExitCode;

use ringkv_core::node::{ClientError, ClientReply, ClientRequest, Consistency};
use ringkv_core::protocol::{Condition, Update};
use serde_json::json;

use super::client::{Client, ConnectOptions};
use crate::cli::{CasArgs, ConsistencyArg, IncrArgs, KeyArgs, PutArgs};
use crate::error::Result;

fn consistency(arg: ConsistencyArg) -> Consistency {
    match arg {
        ConsistencyArg::Linearizable => Consistency::Linearizable,
        ConsistencyArg::Eventual => Consistency::Eventual,
    }
}

fn text(value: Option<&[u8]>) -> Option<String> {
    value.map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Exit codes: 0 done, 1 not found (get) or not written (cas: the condition did not
/// hold), 2 a cluster error (the reply says which).
fn report(key: &str, reply: &ClientReply, json: bool) -> ExitCode {
    match reply {
        ClientReply::Error(error) => {
            let kind = match error {
                ClientError::Unavailable { .. } => "unavailable",
                ClientError::Indeterminate { .. } => "indeterminate",
                ClientError::TooLarge { .. } => "too_large",
                ClientError::Overloaded => "overloaded",
                ClientError::Unsupported { .. } => "unsupported",
                ClientError::InvalidContext { .. } => "invalid_context",
                ClientError::Contention { .. } => "contention",
                ClientError::NotAnInteger => "not_an_integer",
            };
            if json {
                println!(
                    "{}",
                    json!({ "key": key, "error": kind, "message": error.to_string() })
                );
            } else {
                eprintln!("error: {error}");
            }
            ExitCode::from(2)
        }
        ClientReply::Done => {
            if json {
                println!("{}", json!({ "key": key, "ok": true }));
            } else {
                println!("OK");
            }
            ExitCode::SUCCESS
        }
        ClientReply::Value(value) => {
            let text = value
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned());
            if json {
                println!(
                    "{}",
                    json!({ "key": key, "found": value.is_some(), "value": text })
                );
            } else {
                println!("{}", text.as_deref().unwrap_or("(nil)"));
            }
            if value.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        ClientReply::Siblings { values, .. } => {
            let texts: Vec<Option<String>> = values
                .iter()
                .map(|v| v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()))
                .collect();
            if json {
                println!("{}", json!({ "key": key, "siblings": texts }));
            } else if texts.is_empty() {
                println!("(nil)");
            } else {
                for text in texts {
                    println!("{}", text.as_deref().unwrap_or("(deleted)"));
                }
            }
            ExitCode::SUCCESS
        }
        ClientReply::Updated {
            applied,
            previous,
            current,
        } => {
            let (previous, current) = (text(previous.as_deref()), text(current.as_deref()));
            if json {
                println!(
                    "{}",
                    json!({ "key": key, "applied": applied, "previous": previous, "current": current })
                );
            } else {
                // The value now: the sum (incr), the value written, or the value that kept
                // the condition from holding (for the next try).
                println!("{}", current.as_deref().unwrap_or("(nil)"));
                if !applied {
                    eprintln!("not written: the condition did not hold");
                }
            }
            if *applied {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        // Not an answer to a single-key command.
        ClientReply::Keys { .. } => {
            eprintln!("error: unexpected reply to {key:?}");
            ExitCode::from(2)
        }
    }
}

async fn one(args: &crate::cli::ClientArgs, key: &str, request: ClientRequest) -> Result<ExitCode> {
    let mut client = Client::connect(&args.node, &ConnectOptions::from_args(args)?).await?;
    let reply = client.request(request).await?;
    Ok(report(key, &reply, args.json))
}

pub fn put(args: PutArgs) -> Result<ExitCode> {
    let request = ClientRequest::Put {
        key: args.key.clone().into_bytes(),
        value: args.value.into_bytes(),
        consistency: consistency(args.consistency),
    };
    super::block_on(one(&args.client, &args.key, request))?
}

pub fn get(args: KeyArgs) -> Result<ExitCode> {
    let request = ClientRequest::Get {
        key: args.key.clone().into_bytes(),
        consistency: consistency(args.consistency),
    };
    super::block_on(one(&args.client, &args.key, request))?
}

pub fn del(args: KeyArgs) -> Result<ExitCode> {
    let request = ClientRequest::Delete {
        key: args.key.clone().into_bytes(),
        consistency: consistency(args.consistency),
    };
    super::block_on(one(&args.client, &args.key, request))?
}

pub fn incr(args: IncrArgs) -> Result<ExitCode> {
    let request = ClientRequest::Update {
        key: args.key.clone().into_bytes(),
        update: Update::Add { delta: args.by },
    };
    super::block_on(one(&args.client, &args.key, request))?
}

pub fn cas(args: CasArgs) -> Result<ExitCode> {
    let condition = match (args.expect, args.absent) {
        (Some(expected), _) => Condition::Equals(expected.into_bytes()),
        (None, true) => Condition::Absent,
        // clap requires one of --expect, --absent, --present.
        (None, false) => Condition::Present,
    };
    let request = ClientRequest::Update {
        key: args.key.clone().into_bytes(),
        update: Update::Set {
            condition,
            value: args.value.map(String::into_bytes),
        },
    };
    super::block_on(one(&args.client, &args.key, request))?
}
