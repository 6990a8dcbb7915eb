//! What each RESP command does. Data commands become `ClientRequest`s (linearizable;
//! the conditional ones, `SET` with options, `SETNX`, `GETSET`, `GETDEL`, `INCR`... are
//! in `update.rs`);
//! multi-key commands run their keys concurrently, at most `max_in_flight_per_connection`
//! at once, and are **not atomic** (MSET writes each key separately; DEL and EXISTS read
//! each key first). DBSIZE is approximate: the live keys this node replicates, scaled
//! by members / replicas. SCAN and KEYS read the cluster's scan pages (`scan.rs`): exact
//! for keys present (or deleted) for the whole scan.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use ringkv_core::node::{ClientReply, ClientRequest, Consistency};

use super::{reply, scan, update};
use crate::server::context::Context;
use crate::server::exec;

pub type Later = Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;

pub enum Action {
    Now(Vec<u8>),
    Later(Later),
    /// Reply, then close the connection.
    Close(Vec<u8>),
}

/// Wrong AUTH attempts before the connection is closed.
const AUTH_FAILURES_MAX: u32 = 10;

#[derive(Default)]
pub struct Session {
    pub authenticated: bool,
    auth_failures: u32,
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}

fn wrong_args(name: &str) -> Action {
    Action::Now(reply::wrong_args(name))
}

pub fn dispatch(args: Vec<Vec<u8>>, session: &mut Session, ctx: &Arc<Context>) -> Action {
    let Some(name) = args.first().map(|a| upper(a)) else {
        return Action::Now(Vec::new());
    };
    let needs_auth = !session.authenticated && ctx.auth_token.is_some();
    if needs_auth && !matches!(name.as_str(), "AUTH" | "HELLO" | "QUIT") {
        return Action::Now(reply::error("NOAUTH Authentication required."));
    }
    let argc = args.len();
    match name.as_str() {
        "PING" => match argc {
            1 => Action::Now(reply::simple("PONG")),
            2 => Action::Now(reply::bulk(Some(&args[1]))),
            _ => wrong_args(&name),
        },
        "ECHO" if argc == 2 => Action::Now(reply::bulk(Some(&args[1]))),
        "QUIT" => Action::Close(reply::ok()),
        "AUTH" => match argc {
            2 => auth(session, ctx, &args[1]),
            3 => auth(session, ctx, &args[2]),
            _ => wrong_args(&name),
        },
        "HELLO" => hello(&args, session, ctx),
        "CLIENT" => client(&args),
        "SELECT" if argc == 2 => Action::Now(if args[1] == b"0" {
            reply::ok()
        } else {
            reply::error("ERR DB index is out of range")
        }),
        "COMMAND" => command(&args),
        "INFO" => later(ctx, |ctx| async move {
            reply::bulk(Some(info(&ctx).await.as_bytes()))
        }),
        "DBSIZE" if argc == 1 => dbsize(ctx),
        "SCAN" if argc >= 2 => match scan::parse(&args) {
            Ok(parsed) => later(ctx, move |ctx| scan::page(ctx, parsed)),
            Err(error) => Action::Now(error),
        },
        "KEYS" if argc == 2 => {
            let pattern = args[1].clone();
            later(ctx, move |ctx| scan::keys(ctx, pattern))
        }
        "GET" if argc == 2 => {
            let request = get_request(&args[1]);
            later(ctx, move |ctx| async move {
                reply::value(&exec::execute(ctx.route(&request), &ctx.metrics, request).await)
            })
        }
        "SET" | "SETNX" | "GETSET" | "GETDEL" | "INCR" | "DECR" | "INCRBY" | "DECRBY" => {
            match update::parse(&name, &args) {
                Ok(command) => later(ctx, move |ctx| update::run(ctx, command)),
                Err(error) => Action::Now(error),
            }
        }
        "MGET" if argc >= 2 => {
            let requests = args[1..].iter().map(|k| get_request(k)).collect();
            later(ctx, move |ctx| async move {
                let replies = run_all(&ctx, requests).await;
                if let Some(error) = first_error(&replies) {
                    return error;
                }
                reply::array(&replies.iter().map(reply::value).collect::<Vec<_>>())
            })
        }
        "MSET" if argc >= 3 && argc % 2 == 1 => {
            let requests = args[1..]
                .chunks(2)
                .map(|pair| ClientRequest::Put {
                    key: pair[0].clone(),
                    value: pair[1].clone(),
                    consistency: Consistency::Linearizable,
                })
                .collect();
            later(ctx, move |ctx| async move {
                let replies = run_all(&ctx, requests).await;
                first_error(&replies).unwrap_or_else(reply::ok)
            })
        }
        "EXISTS" if argc >= 2 => {
            let requests = args[1..].iter().map(|k| get_request(k)).collect();
            later(ctx, move |ctx| async move {
                let replies = run_all(&ctx, requests).await;
                first_error(&replies).unwrap_or_else(|| reply::integer(present(&replies)))
            })
        }
        "DEL" | "UNLINK" if argc >= 2 => {
            let keys: Vec<Vec<u8>> = args[1..].to_vec();
            later(ctx, move |ctx| async move {
                // Redis answers how many keys existed: read each first (not atomic).
                let reads = run_all(&ctx, keys.iter().map(|k| get_request(k)).collect()).await;
                if let Some(error) = first_error(&reads) {
                    return error;
                }
                let existing: Vec<ClientRequest> = keys
                    .iter()
                    .zip(&reads)
                    .filter(|(_, r)| matches!(r, ClientReply::Value(Some(_))))
                    .map(|(key, _)| ClientRequest::Delete {
                        key: key.clone(),
                        consistency: Consistency::Linearizable,
                    })
                    .collect();
                let count = existing.len() as i64;
                let deletes = run_all(&ctx, existing).await;
                first_error(&deletes).unwrap_or_else(|| reply::integer(count))
            })
        }
        "ECHO" | "SELECT" | "DBSIZE" | "GET" | "MGET" | "MSET" | "EXISTS" | "DEL" | "UNLINK" => {
            wrong_args(&name)
        }
        _ => {
            let shown: String = String::from_utf8_lossy(&args[0]).chars().take(64).collect();
            Action::Now(reply::error(&format!(
                "ERR unknown or unsupported command '{shown}' (ringkv supports GET, SET, SETNX, \
                 GETSET, GETDEL, INCR, DECR, INCRBY, DECRBY, DEL, EXISTS, MGET, MSET, SCAN, KEYS, \
                 PING, INFO, DBSIZE)"
            )))
        }
    }
}

fn get_request(key: &[u8]) -> ClientRequest {
    ClientRequest::Get {
        key: key.to_vec(),
        consistency: Consistency::Linearizable,
    }
}

fn later<F, Fut>(ctx: &Arc<Context>, f: F) -> Action
where
    F: FnOnce(Arc<Context>) -> Fut,
    Fut: Future<Output = Vec<u8>> + Send + 'static,
{
    Action::Later(Box::pin(f(ctx.clone())))
}

/// Runs `requests` concurrently (bounded), replies in request order.
async fn run_all(ctx: &Arc<Context>, requests: Vec<ClientRequest>) -> Vec<ClientReply> {
    let limit = ctx.limits.max_in_flight_per_connection.max(1);
    stream::iter(requests)
        .map(|request| exec::execute(ctx.route(&request), &ctx.metrics, request))
        .buffered(limit)
        .collect()
        .await
}

fn first_error(replies: &[ClientReply]) -> Option<Vec<u8>> {
    replies.iter().find_map(|r| match r {
        ClientReply::Error(error) => Some(reply::cluster_error(error)),
        _ => None,
    })
}

fn present(replies: &[ClientReply]) -> i64 {
    replies
        .iter()
        .filter(|r| matches!(r, ClientReply::Value(Some(_))))
        .count() as i64
}

fn auth(session: &mut Session, ctx: &Context, password: &[u8]) -> Action {
    if ctx.auth_token.is_none() {
        return Action::Now(reply::error(
            "ERR AUTH <password> called without any password configured for the default user",
        ));
    }
    if ctx.token_ok(Some(password)) {
        session.authenticated = true;
        return Action::Now(reply::ok());
    }
    ctx.metrics.inc(&ctx.metrics.client_auth_failures);
    session.auth_failures += 1;
    let wrong = reply::error("WRONGPASS invalid username-password pair or user is disabled.");
    if session.auth_failures >= AUTH_FAILURES_MAX {
        Action::Close(wrong)
    } else {
        Action::Now(wrong)
    }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`: RESP2 only.
fn hello(args: &[Vec<u8>], session: &mut Session, ctx: &Context) -> Action {
    if let Some(version) = args.get(1) {
        if version.as_slice() != b"2" {
            return Action::Now(reply::error("NOPROTO unsupported protocol version"));
        }
    }
    let mut i = 2;
    while i < args.len() {
        match upper(&args[i]).as_str() {
            "AUTH" if i + 2 < args.len() => {
                if let Action::Now(r) | Action::Close(r) = auth(session, ctx, &args[i + 2]) {
                    if !session.authenticated {
                        return Action::Now(r);
                    }
                }
                i += 3;
            }
            "SETNAME" if i + 1 < args.len() => i += 2,
            _ => return Action::Now(reply::error("ERR syntax error in HELLO option")),
        }
    }
    if ctx.auth_token.is_some() && !session.authenticated {
        return Action::Now(reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    let fields: Vec<Vec<u8>> = vec![
        reply::bulk(Some(b"server")),
        reply::bulk(Some(b"ringkv")),
        reply::bulk(Some(b"version")),
        reply::bulk(Some(env!("CARGO_PKG_VERSION").as_bytes())),
        reply::bulk(Some(b"proto")),
        reply::integer(2),
        reply::bulk(Some(b"mode")),
        reply::bulk(Some(b"cluster")),
        reply::bulk(Some(b"role")),
        reply::bulk(Some(b"master")),
        reply::bulk(Some(b"modules")),
        reply::array(&[]),
    ];
    Action::Now(reply::array(&fields))
}

fn client(args: &[Vec<u8>]) -> Action {
    let sub = args.get(1).map(|a| upper(a)).unwrap_or_default();
    Action::Now(match sub.as_str() {
        "SETNAME" | "SETINFO" | "REPLY" | "NO-EVICT" | "NO-TOUCH" => reply::ok(),
        "GETNAME" => reply::bulk(None),
        "ID" => reply::integer(1),
        _ => reply::error("ERR unsupported CLIENT subcommand"),
    })
}

/// Commands answered here besides [`update::COMMANDS`] (for `COMMAND COUNT`).
const COMMANDS: &[&str] = &[
    "PING", "ECHO", "QUIT", "AUTH", "HELLO", "CLIENT", "SELECT", "COMMAND", "INFO", "DBSIZE",
    "SCAN", "KEYS", "GET", "MGET", "MSET", "EXISTS", "DEL", "UNLINK",
];

/// Enough for redis-cli: `COMMAND DOCS` (hints) and `COMMAND` get an empty array.
fn command(args: &[Vec<u8>]) -> Action {
    let sub = args.get(1).map(|a| upper(a)).unwrap_or_default();
    Action::Now(match sub.as_str() {
        "" | "DOCS" | "INFO" => reply::array(&[]),
        "COUNT" => reply::integer(COMMANDS.len() as i64 + update::COMMANDS.len() as i64),
        _ => reply::error("ERR unsupported COMMAND subcommand"),
    })
}

async fn info(ctx: &Context) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let m = &ctx.metrics;
    let (members, replicas, role) = match ctx.node.status().await {
        Ok(status) => (
            status.members.len(),
            status.layout.replicas(),
            format!("{:?}", status.membership.role).to_ascii_lowercase(),
        ),
        Err(_) => (0, 0, "stopping".into()),
    };
    format!(
        "# Server\r\nredis_version:7.0.0\r\nringkv_version:{}\r\nnode_id:{}\r\n\
         redis_mode:cluster\r\n\r\n# Clients\r\nconnected_clients:{}\r\n\r\n\
         # Cluster\r\nrole:{role}\r\nmembers:{members}\r\nreplicas:{replicas}\r\n",
        env!("CARGO_PKG_VERSION"),
        ctx.node.id(),
        m.connections_open.load(Relaxed),
    )
}

fn dbsize(ctx: &Arc<Context>) -> Action {
    later(ctx, |ctx| async move {
        let engine = ctx.node.engine().clone();
        match tokio::task::spawn_blocking(move || exec::count_local_keys(engine.as_ref())).await {
            Ok(Ok(local)) => {
                let (members, replicas) = match ctx.node.status().await {
                    Ok(status) => (status.members.len().max(1), status.layout.replicas()),
                    Err(_) => (1, 1),
                };
                let holders = replicas.min(members).max(1) as u64;
                reply::integer((local * members as u64 / holders) as i64)
            }
            // After a storage failure the engine refuses scans: say so.
            Ok(Err(error)) => reply::error(&format!("ERR counting keys failed: {error}")),
            Err(_) => reply::error("ERR counting keys failed"),
        }
    })
}
