//! Why a frame could not be encoded or decoded.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("frame is {size_bytes} bytes; the limit is {limit_bytes} bytes")]
    FrameTooLarge { size_bytes: u64, limit_bytes: u64 },
    #[error("frame of {size_bytes} bytes is too short to hold the format version")]
    Truncated { size_bytes: u64 },
    #[error("frame has format version {found}; this build speaks version {supported}")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("malformed message: {reason}")]
    Malformed { reason: String },
    #[error("{count} unexpected bytes after the message")]
    TrailingBytes { count: u64 },
}
