//! `ringkv leave`, `ringkv remove` and `ringkv abort`: membership changes through any
//! member.

use std::process::ExitCode;

use ringkv_core::node::{ClientReply, ClientRequest};
use ringkv_core::protocol::AdminRequest;
use ringkv_core::ring::NodeId;
use serde_json::json;

use super::client::{Client, ConnectOptions};
use crate::cli::{ClientArgs, LeaveArgs, RemoveArgs};
use crate::config::parse_node_id;
use crate::error::Result;

async fn change(
    args: &ClientArgs,
    request: impl FnOnce(NodeId) -> AdminRequest,
) -> Result<(String, ClientReply)> {
    let mut client = Client::connect(&args.node, &ConnectOptions::from_args(args)?).await?;
    let request = request(NodeId(client.node));
    let what = format!("{request:?}");
    let reply = client.request(ClientRequest::Admin(request)).await?;
    Ok((what, reply))
}

fn report(args: &ClientArgs, what: &str, reply: &ClientReply) -> ExitCode {
    let done = if what == "Abort" {
        "aborted: the layout before the change is committed again"
    } else {
        "chosen; data moves in the background (see `ringkv status`)"
    };
    let (ok, message) = match reply {
        ClientReply::Done => (true, done.to_string()),
        ClientReply::Error(error) => (false, error.to_string()),
        other => (false, format!("unexpected reply {other:?}")),
    };
    if args.json {
        println!(
            "{}",
            json!({ "change": what, "ok": ok, "message": message })
        );
    } else {
        println!("{what}: {message}");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

pub fn leave(args: LeaveArgs) -> Result<ExitCode> {
    let target = args.id.as_deref().map(parse_node_id).transpose()?;
    let (what, reply) = super::block_on(change(&args.client, |connected| {
        AdminRequest::Leave(target.unwrap_or(connected))
    }))??;
    Ok(report(&args.client, &what, &reply))
}

pub fn remove(args: RemoveArgs) -> Result<ExitCode> {
    let target = parse_node_id(&args.id)?;
    let request = move |_| {
        if args.force {
            AdminRequest::ForceRemove(target)
        } else {
            AdminRequest::Remove(target)
        }
    };
    let (what, reply) = super::block_on(change(&args.client, request))??;
    Ok(report(&args.client, &what, &reply))
}

pub fn abort(args: ClientArgs) -> Result<ExitCode> {
    let (what, reply) = super::block_on(change(&args, |_| AdminRequest::Abort))??;
    Ok(report(&args, &what, &reply))
}
