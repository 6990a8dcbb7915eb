//! Errors as JS values: an `Error` whose `name` is `"RingkvError"` and whose `code` says
//! what happened. The package's JS wrapper (`wasm/js/errors.js`) turns each into the
//! matching `RingkvError` subclass; the Rust side only guarantees `code`, `message` and
//! the extra fields listed per code in wasm/README.md.

use ringkv_core::node::{ClientError, NodeError};
use ringkv_core::storage::StorageError;

use crate::value::ValueError;

/// Every error code the package raises. Strings are API: only ever added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Not enough replicas reachable; the operation did not take effect.
    Unavailable,
    /// A write may or may not have taken effect.
    Indeterminate,
    /// Key, value or context over its limit (`sizeBytes`, `limitBytes`, `what`).
    TooLarge,
    /// Too many requests in flight; did not take effect.
    Overloaded,
    /// The operation or value type is not supported.
    Unsupported,
    /// An eventual write's context was not produced by this cluster.
    InvalidContext,
    /// A bad argument: key type, option value.
    InvalidArgument,
    /// The replica is closed (or closing).
    Closed,
    /// The block store failed (IndexedDB, the JS store, corrupt stored files); the
    /// replica stops and must be reopened.
    Storage,
    /// A stored value could not be decoded.
    CorruptValue,
    /// The store cannot prove it is the cluster member its node id names (it lost its
    /// data, or the id is another store's): the replica must rejoin under a new id.
    Identity,
    /// Concurrent conditional writes kept an update from completing; it did not take
    /// effect: retry.
    Contention,
    /// `increment` found a value that is not a 64-bit integer, or the sum overflows.
    NotAnInteger,
}

impl Code {
    pub const ALL: [Code; 13] = [
        Code::Unavailable,
        Code::Indeterminate,
        Code::TooLarge,
        Code::Overloaded,
        Code::Unsupported,
        Code::InvalidContext,
        Code::InvalidArgument,
        Code::Closed,
        Code::Storage,
        Code::CorruptValue,
        Code::Identity,
        Code::Contention,
        Code::NotAnInteger,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unavailable => "UNAVAILABLE",
            Code::Indeterminate => "INDETERMINATE",
            Code::TooLarge => "TOO_LARGE",
            Code::Overloaded => "OVERLOADED",
            Code::Unsupported => "UNSUPPORTED",
            Code::InvalidContext => "INVALID_CONTEXT",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::Closed => "CLOSED",
            Code::Storage => "STORAGE",
            Code::CorruptValue => "CORRUPT_VALUE",
            Code::Identity => "IDENTITY",
            Code::Contention => "CONTENTION",
            Code::NotAnInteger => "NOT_AN_INTEGER",
        }
    }
}

/// A host-side error before it becomes a JS value (so non-wasm unit tests can see it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// For `TooLarge`: (what, size, limit).
    pub size: Option<(String, u64, u64)>,
    /// For an update whose reply could not be turned into JS (`CorruptValue`): whether
    /// the update took effect all the same, so the caller knows not to redo it.
    pub applied: Option<bool>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            size: None,
            applied: None,
        }
    }

    /// The same error, saying whether the update it came from took effect.
    pub fn with_applied(mut self, applied: bool) -> Self {
        self.applied = Some(applied);
        self
    }

    pub fn closed() -> Self {
        Error::new(Code::Closed, "the replica is closed")
    }

    /// An error value that came back through a JS promise: ours keep their code; any
    /// other thrown value is UNAVAILABLE with its message.
    #[cfg(target_arch = "wasm32")]
    pub fn from_js(value: wasm_bindgen::JsValue) -> Self {
        let get = |k: &str| js_sys::Reflect::get(&value, &k.into()).ok();
        let message = get("message")
            .and_then(|m| m.as_string())
            .or_else(|| value.as_string())
            .unwrap_or_else(|| format!("{value:?}"));
        let code = get("code").and_then(|c| c.as_string());
        let code = Code::ALL
            .into_iter()
            .find(|c| Some(c.as_str()) == code.as_deref())
            .unwrap_or(Code::Unavailable);
        Error::new(code, message)
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        match e {
            ClientError::Unavailable { .. } => Error::new(Code::Unavailable, message),
            ClientError::Indeterminate { .. } => Error::new(Code::Indeterminate, message),
            ClientError::TooLarge {
                what,
                size_bytes,
                limit_bytes,
            } => Error {
                code: Code::TooLarge,
                message,
                size: Some((what.to_string(), size_bytes, limit_bytes)),
                applied: None,
            },
            ClientError::Overloaded => Error::new(Code::Overloaded, message),
            ClientError::Unsupported { .. } => Error::new(Code::Unsupported, message),
            ClientError::InvalidContext { .. } => Error::new(Code::InvalidContext, message),
            ClientError::Contention { .. } => Error::new(Code::Contention, message),
            ClientError::NotAnInteger => Error::new(Code::NotAnInteger, message),
        }
    }
}

impl From<ValueError> for Error {
    fn from(e: ValueError) -> Self {
        match e {
            ValueError::Unsupported(m) => Error::new(Code::Unsupported, m),
            ValueError::TooLarge {
                size_bytes,
                limit_bytes,
            } => Error {
                code: Code::TooLarge,
                message: format!(
                    "value encodes to more than {limit_bytes} bytes (at least {size_bytes})"
                ),
                size: Some(("value".into(), size_bytes, limit_bytes)),
                applied: None,
            },
            ValueError::Corrupt(m) => Error::new(Code::CorruptValue, m),
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::new(Code::Storage, e.to_string())
    }
}

impl From<NodeError> for Error {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::InvalidConfig { reason } => Error::new(Code::InvalidArgument, reason),
            other => Error::new(Code::Storage, other.to_string()),
        }
    }
}

#[cfg(target_arch = "wasm32")]
impl From<Error> for wasm_bindgen::JsValue {
    fn from(e: Error) -> Self {
        use js_sys::Reflect;
        use wasm_bindgen::JsValue;
        let err = js_sys::Error::new(&e.message);
        err.set_name("RingkvError");
        // Reflect::set on a fresh Error cannot fail (it is extensible, no setters).
        let set = |k: &str, v: JsValue| {
            let _ = Reflect::set(&err, &k.into(), &v);
        };
        set("code", e.code.as_str().into());
        if let Some((what, size, limit)) = e.size {
            set("what", what.into());
            set("sizeBytes", JsValue::from_f64(size as f64));
            set("limitBytes", JsValue::from_f64(limit as f64));
        }
        if let Some(applied) = e.applied {
            set("applied", applied.into());
        }
        err.into()
    }
}
