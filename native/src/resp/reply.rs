//! RESP2 reply encoding, and how cluster outcomes map to replies.

use ringkv_core::node::{ClientError, ClientReply};

pub fn simple(text: &str) -> Vec<u8> {
    format!("+{text}\r\n").into_bytes()
}

pub fn ok() -> Vec<u8> {
    simple("OK")
}

/// `-PREFIX message`; CR and LF in the message would end the reply early.
pub fn error(text: &str) -> Vec<u8> {
    let clean: String = text
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    format!("-{clean}\r\n").into_bytes()
}

/// Redis's arity error, with the command name in lower case as Redis writes it.
pub fn wrong_args(name: &str) -> Vec<u8> {
    error(&format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ))
}

pub fn syntax_error() -> Vec<u8> {
    error("ERR syntax error")
}

/// Redis's reply to an integer argument (or stored value) that is not one.
pub fn not_an_integer() -> Vec<u8> {
    error("ERR value is not an integer or out of range")
}

pub fn integer(n: i64) -> Vec<u8> {
    format!(":{n}\r\n").into_bytes()
}

pub fn bulk(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => b"$-1\r\n".to_vec(),
        Some(value) => {
            let mut out = format!("${}\r\n", value.len()).into_bytes();
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
            out
        }
    }
}

/// An array of already-encoded elements.
pub fn array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", items.len()).into_bytes();
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

/// Cluster errors get their own prefixes so clients can tell "did not happen"
/// (UNAVAILABLE, TOOLARGE, OVERLOADED: safe to retry) from "may have happened"
/// (INDETERMINATE).
pub fn cluster_error(error: &ClientError) -> Vec<u8> {
    match error {
        ClientError::Unavailable { reason } => self::error(&format!(
            "UNAVAILABLE {reason} (did not take effect; safe to retry)"
        )),
        ClientError::Indeterminate { reason } => self::error(&format!(
            "INDETERMINATE {reason} (the write may or may not have taken effect)"
        )),
        ClientError::TooLarge { .. } => self::error(&format!("TOOLARGE {error}")),
        ClientError::Overloaded => {
            self::error("OVERLOADED too many requests in flight; retry later")
        }
        ClientError::Contention { reason } => {
            self::error(&format!("CONTENTION {reason} (did not take effect; retry)"))
        }
        ClientError::NotAnInteger => not_an_integer(),
        ClientError::Unsupported { .. } | ClientError::InvalidContext { .. } => {
            self::error(&format!("ERR {error}"))
        }
    }
}

/// The reply for a GET.
pub fn value(reply: &ClientReply) -> Vec<u8> {
    match reply {
        ClientReply::Value(value) => bulk(value.as_deref()),
        ClientReply::Error(error) => cluster_error(error),
        ClientReply::Done
        | ClientReply::Siblings { .. }
        | ClientReply::Keys { .. }
        | ClientReply::Updated { .. } => error("ERR unexpected reply"),
    }
}
