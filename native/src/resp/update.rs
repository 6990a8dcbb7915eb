//! The conditional and read-modify-write commands: `SET key value [NX|XX] [GET]`,
//! `SETNX`, `GETSET`, `GETDEL`, `INCR`, `DECR`, `INCRBY`, `DECRBY`. Each is one
//! `ClientRequest::Update`, a single consensus round on the key's register, so it is
//! linearizable together with every `GET`, `SET` and `DEL` of the key (an increment is
//! never lost to a concurrent one). Replies follow Redis 7 exactly, including its
//! argument errors, so client libraries decode them as they would Redis's.
//!
//! Two outcomes Redis does not have: `-CONTENTION` (concurrent conditional writes on the
//! key kept this one from a round; it did not take effect, retry) and `-INDETERMINATE`
//! (`reply::cluster_error`). Expiry (`EX`, `PX`, `EXAT`, `PXAT`, `KEEPTTL`) is not built:
//! those options are refused with an error rather than ignored, since ignoring them
//! would leave a value a client expects to vanish stored for ever.

use std::sync::Arc;

use ringkv_core::node::{ClientReply, ClientRequest, Consistency};
use ringkv_core::protocol::{Condition, Update};

use super::reply;
use crate::server::context::Context;
use crate::server::exec;

/// Names [`parse`] handles (upper case), for the dispatcher and `COMMAND COUNT`.
pub const COMMANDS: &[&str] = &[
    "SET", "SETNX", "GETSET", "GETDEL", "INCR", "DECR", "INCRBY", "DECRBY",
];

const EXPIRY_UNSUPPORTED: &str = "ERR SET expiry options (EX, PX, EXAT, PXAT, KEEPTTL) are not \
     supported by ringkv yet; the value was not written";

/// How a command answers its `ClientReply::Updated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `SET` without `GET`: `+OK` when stored, nil when its condition did not hold.
    OkOrNil,
    /// `SET .. GET`, `GETSET`, `GETDEL`: the value found, as a bulk string or nil.
    Previous,
    /// `SETNX`: `:1` when stored, `:0` when not.
    Stored,
    /// `INCR` and friends: the value after, as an integer.
    Counter,
}

/// A parsed command: the request to run and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub request: ClientRequest,
    pub shape: Shape,
}

/// Parses one of [`COMMANDS`] (`name` upper case, `args[0]` the name as sent). `Err` is
/// the error reply, with Redis's wording (arity, syntax, integer arguments).
pub fn parse(name: &str, args: &[Vec<u8>]) -> Result<Command, Vec<u8>> {
    let arity_ok = match name {
        "SET" => args.len() >= 3,
        "SETNX" | "GETSET" | "INCRBY" | "DECRBY" => args.len() == 3,
        "GETDEL" | "INCR" | "DECR" => args.len() == 2,
        _ => false,
    };
    let (Some(key), true) = (args.get(1), arity_ok) else {
        return Err(reply::wrong_args(name));
    };
    let value = || args.get(2).cloned();
    let set = |condition, value| Update::Set { condition, value };
    let (update, shape) = match name {
        "SET" => return set_command(key, args),
        "SETNX" => (set(Condition::Absent, value()), Shape::Stored),
        "GETSET" => (set(Condition::Always, value()), Shape::Previous),
        "GETDEL" => (set(Condition::Always, None), Shape::Previous),
        "INCR" => (Update::Add { delta: 1 }, Shape::Counter),
        "DECR" => (Update::Add { delta: -1 }, Shape::Counter),
        "INCRBY" => (
            Update::Add {
                delta: argument(args)?,
            },
            Shape::Counter,
        ),
        _ => {
            // DECRBY: Redis refuses to negate i64::MIN before it looks at the key.
            let delta = argument(args)?
                .checked_neg()
                .ok_or_else(|| reply::error("ERR decrement would overflow"))?;
            (Update::Add { delta }, Shape::Counter)
        }
    };
    Ok(Command {
        request: ClientRequest::Update {
            key: key.clone(),
            update,
        },
        shape,
    })
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`, with Redis 7.0's
/// option rules: NX and XX exclude each other, one kind of expiry at most, and `NX GET`
/// is allowed (Redis 7). A syntax error wins over the expiry refusal, as it would in
/// Redis (options are checked before any value).
fn set_command(key: &[u8], args: &[Vec<u8>]) -> Result<Command, Vec<u8>> {
    let mut condition = Condition::Always;
    let mut get = false;
    // The expiry option seen (upper case); Redis allows repeating the same one.
    let mut expiry: Option<String> = None;
    let mut i = 3;
    while let Some(option) = args.get(i) {
        let option = String::from_utf8_lossy(option).to_ascii_uppercase();
        let has_argument = i + 1 < args.len();
        let expiry_ok = |wanted: &str| expiry.as_deref().is_none_or(|seen| seen == wanted);
        match option.as_str() {
            "NX" if condition != Condition::Present => condition = Condition::Absent,
            "XX" if condition != Condition::Absent => condition = Condition::Present,
            "GET" => get = true,
            "KEEPTTL" if expiry_ok("KEEPTTL") => expiry = Some(option),
            "EX" | "PX" | "EXAT" | "PXAT" if expiry_ok(&option) && has_argument => {
                expiry = Some(option);
                i += 1;
            }
            _ => return Err(reply::syntax_error()),
        }
        i += 1;
    }
    if expiry.is_some() {
        return Err(reply::error(EXPIRY_UNSUPPORTED));
    }
    let request = match (&condition, get) {
        // A plain SET stays a plain put: no consensus round, no contention.
        (Condition::Always, false) => ClientRequest::Put {
            key: key.to_vec(),
            value: args[2].clone(),
            consistency: Consistency::Linearizable,
        },
        _ => ClientRequest::Update {
            key: key.to_vec(),
            update: Update::Set {
                condition,
                value: Some(args[2].clone()),
            },
        },
    };
    let shape = if get { Shape::Previous } else { Shape::OkOrNil };
    Ok(Command { request, shape })
}

/// The integer argument `args[2]`, parsed as Redis parses one.
fn argument(args: &[Vec<u8>]) -> Result<i64, Vec<u8>> {
    args.get(2)
        .and_then(|arg| redis_integer(arg))
        .ok_or_else(reply::not_an_integer)
}

/// A signed 64-bit decimal integer in Redis's canonical form (`string2ll`): an optional
/// `-`, no `+`, no leading zeros (`0` alone), no spaces, at most 20 bytes. Rust's
/// `i64::from_str` alone would accept `+5` and `007`, which Redis refuses.
pub fn redis_integer(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = bytes.len() <= 20
        && !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || bytes == b"0");
    if !canonical {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Runs a parsed command and encodes its reply.
pub async fn run(ctx: Arc<Context>, command: Command) -> Vec<u8> {
    let Command { request, shape } = command;
    let outcome = exec::execute(ctx.route(&request), &ctx.metrics, request).await;
    encode(shape, &outcome)
}

fn encode(shape: Shape, outcome: &ClientReply) -> Vec<u8> {
    match (outcome, shape) {
        (ClientReply::Error(error), _) => reply::cluster_error(error),
        // A plain SET (no condition, no GET) was a put.
        (ClientReply::Done, Shape::OkOrNil) => reply::ok(),
        (ClientReply::Updated { applied, .. }, Shape::OkOrNil) => match applied {
            true => reply::ok(),
            false => reply::bulk(None),
        },
        (ClientReply::Updated { previous, .. }, Shape::Previous) => {
            reply::bulk(previous.as_deref())
        }
        (ClientReply::Updated { applied, .. }, Shape::Stored) => {
            reply::integer(i64::from(*applied))
        }
        (ClientReply::Updated { current, .. }, Shape::Counter) => {
            match current.as_deref().and_then(redis_integer) {
                Some(value) => reply::integer(value),
                None => reply::error("ERR unexpected reply: the counter is not an integer"),
            }
        }
        _ => reply::error("ERR unexpected reply"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    fn parsed(parts: &[&str]) -> Result<Command, String> {
        let args = args(parts);
        parse(&parts[0].to_ascii_uppercase(), &args)
            .map_err(|e| String::from_utf8_lossy(&e).trim_end().to_string())
    }

    fn update(parts: &[&str]) -> (Update, Shape) {
        match parsed(parts) {
            Ok(Command {
                request: ClientRequest::Update { update, .. },
                shape,
            }) => (update, shape),
            other => panic!("{parts:?}: {other:?}"),
        }
    }

    #[test]
    fn integers_parse_as_redis_parses_them() {
        for (text, want) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("-7", Some(-7)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("+7", None),
            ("07", None),
            ("-0", None),
            ("-", None),
            ("", None),
            (" 7", None),
            ("7 ", None),
            ("1.5", None),
            ("0x10", None),
        ] {
            assert_eq!(redis_integer(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn set_options_follow_redis_7() {
        let value = Some(b"v".to_vec());
        let set = |condition| Update::Set {
            condition,
            value: value.clone(),
        };
        assert_eq!(
            update(&["SET", "k", "v", "nx"]),
            (set(Condition::Absent), Shape::OkOrNil)
        );
        assert_eq!(
            update(&["SET", "k", "v", "XX", "GET"]),
            (set(Condition::Present), Shape::Previous)
        );
        assert_eq!(
            update(&["SET", "k", "v", "NX", "GET"]),
            (set(Condition::Absent), Shape::Previous),
            "Redis 7 allows NX with GET"
        );
        assert_eq!(
            update(&["SET", "k", "v", "GET"]),
            (set(Condition::Always), Shape::Previous)
        );
        assert_eq!(
            update(&["SET", "k", "v", "NX", "NX"]),
            (set(Condition::Absent), Shape::OkOrNil)
        );
        // SET with no condition and no GET stays a plain put.
        assert!(matches!(
            parsed(&["SET", "k", "v"]),
            Ok(Command {
                request: ClientRequest::Put { .. },
                shape: Shape::OkOrNil
            })
        ));
        let syntax = Err("-ERR syntax error".to_string());
        for bad in [
            &["SET", "k", "v", "NX", "XX"][..],
            &["SET", "k", "v", "XX", "NX"],
            &["SET", "k", "v", "BOGUS"],
            &["SET", "k", "v", "EX"],
            &["SET", "k", "v", "EX", "10", "PX", "10"],
            &["SET", "k", "v", "KEEPTTL", "EX", "10"],
            &["SET", "k", "v", "EX", "10", "KEEPTTL"],
        ] {
            assert_eq!(parsed(bad), syntax, "{bad:?}");
        }
        for expiry in [
            &["SET", "k", "v", "EX", "10"][..],
            &["SET", "k", "v", "px", "10", "NX"],
            &["SET", "k", "v", "EXAT", "10", "EXAT", "11"],
            &["SET", "k", "v", "PXAT", "nonsense"],
            &["SET", "k", "v", "KEEPTTL"],
        ] {
            let refused = parsed(expiry).expect_err("expiry is refused");
            assert!(refused.contains("not supported"), "{expiry:?}: {refused}");
        }
        assert_eq!(
            parsed(&["SET", "k"]),
            Err("-ERR wrong number of arguments for 'set' command".into())
        );
    }

    #[test]
    fn other_commands_map_to_updates() {
        let set = |condition, value: Option<&str>| Update::Set {
            condition,
            value: value.map(|v| v.as_bytes().to_vec()),
        };
        assert_eq!(
            update(&["SETNX", "k", "v"]),
            (set(Condition::Absent, Some("v")), Shape::Stored)
        );
        assert_eq!(
            update(&["GETSET", "k", "v"]),
            (set(Condition::Always, Some("v")), Shape::Previous)
        );
        assert_eq!(
            update(&["GETDEL", "k"]),
            (set(Condition::Always, None), Shape::Previous)
        );
        assert_eq!(
            update(&["incr", "k"]),
            (Update::Add { delta: 1 }, Shape::Counter)
        );
        assert_eq!(
            update(&["DECR", "k"]),
            (Update::Add { delta: -1 }, Shape::Counter)
        );
        assert_eq!(
            update(&["INCRBY", "k", "-5"]),
            (Update::Add { delta: -5 }, Shape::Counter)
        );
        assert_eq!(
            update(&["DECRBY", "k", "9223372036854775807"]),
            (Update::Add { delta: -i64::MAX }, Shape::Counter)
        );
        let not_integer = Err("-ERR value is not an integer or out of range".to_string());
        assert_eq!(parsed(&["INCRBY", "k", "+1"]), not_integer);
        assert_eq!(parsed(&["DECRBY", "k", "x"]), not_integer);
        assert_eq!(
            parsed(&["DECRBY", "k", "-9223372036854775808"]),
            Err("-ERR decrement would overflow".into())
        );
        for (bad, name) in [
            (&["INCR"][..], "incr"),
            (&["INCR", "a", "b"], "incr"),
            (&["INCRBY", "k"], "incrby"),
            (&["GETDEL", "k", "x"], "getdel"),
            (&["SETNX", "k"], "setnx"),
            (&["GETSET", "k", "v", "x"], "getset"),
        ] {
            assert_eq!(
                parsed(bad),
                Err(format!(
                    "-ERR wrong number of arguments for '{name}' command"
                ))
            );
        }
    }

    #[test]
    fn replies_have_redis_shapes() {
        let updated =
            |applied, previous: Option<&str>, current: Option<&str>| ClientReply::Updated {
                applied,
                previous: previous.map(|v| v.as_bytes().to_vec()),
                current: current.map(|v| v.as_bytes().to_vec()),
            };
        let cases = [
            (Shape::OkOrNil, updated(true, None, Some("v")), "+OK\r\n"),
            (
                Shape::OkOrNil,
                updated(false, Some("o"), Some("o")),
                "$-1\r\n",
            ),
            (Shape::OkOrNil, ClientReply::Done, "+OK\r\n"),
            (
                Shape::Previous,
                updated(true, Some("o"), Some("v")),
                "$1\r\no\r\n",
            ),
            (Shape::Previous, updated(true, None, Some("v")), "$-1\r\n"),
            (Shape::Stored, updated(true, None, Some("v")), ":1\r\n"),
            (
                Shape::Stored,
                updated(false, Some("o"), Some("o")),
                ":0\r\n",
            ),
            (
                Shape::Counter,
                updated(true, Some("-2"), Some("3")),
                ":3\r\n",
            ),
            (
                Shape::Counter,
                updated(true, None, Some("x")),
                "-ERR unexpected reply: the counter is not an integer\r\n",
            ),
            (
                Shape::Counter,
                ClientReply::Error(ringkv_core::node::ClientError::NotAnInteger),
                "-ERR value is not an integer or out of range\r\n",
            ),
            (
                Shape::Stored,
                ClientReply::Done,
                "-ERR unexpected reply\r\n",
            ),
        ];
        for (shape, outcome, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&encode(shape, &outcome)),
                want,
                "{shape:?} {outcome:?}"
            );
        }
    }
}
