//! RESP2 request parsing: multibulk (`*N\r\n$len\r\n...`) as clients send, and inline
//! commands (`PING\r\n`) as people type into telnet. Incremental (returns `Incomplete`
//! until a whole command is buffered), bounded, never panics.

use thiserror::Error;

/// Longest header or inline line.
pub const LINE_BYTES_MAX: usize = 64 << 10;

#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// All bulk payloads of one command together.
    pub command_bytes_max: usize,
    /// Arguments of one command.
    pub args_max: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A command and how many bytes of the buffer it used. May be empty (`*0`), which
    /// callers skip.
    Command(Vec<Vec<u8>>, usize),
    Incomplete,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("Protocol error: {0}")]
    Protocol(&'static str),
    #[error("Protocol error: command larger than {0} bytes")]
    TooLarge(usize),
}

pub fn parse(buf: &[u8], limits: ParseLimits) -> Result<Parsed, ParseError> {
    match buf.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'*') => multibulk(buf, limits),
        Some(_) => inline(buf),
    }
}

/// The line starting at `pos` (without CRLF) and the position after its CRLF.
fn line(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, ParseError> {
    let rest = &buf[pos.min(buf.len())..];
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(end) if end <= LINE_BYTES_MAX => Ok(Some((&rest[..end], pos + end + 2))),
        Some(_) => Err(ParseError::Protocol("line too long")),
        None if rest.len() > LINE_BYTES_MAX => Err(ParseError::Protocol("line too long")),
        None => Ok(None),
    }
}

fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn multibulk(buf: &[u8], limits: ParseLimits) -> Result<Parsed, ParseError> {
    let Some((header, mut pos)) = line(buf, 0)? else {
        return Ok(Parsed::Incomplete);
    };
    let count = number(&header[1..]).ok_or(ParseError::Protocol("invalid multibulk length"))?;
    if count <= 0 {
        return Ok(Parsed::Command(Vec::new(), pos));
    }
    let count =
        usize::try_from(count).map_err(|_| ParseError::Protocol("invalid multibulk length"))?;
    if count > limits.args_max {
        return Err(ParseError::Protocol("invalid multibulk length"));
    }
    // Capacity grows with what actually arrives, not with the declared count.
    let mut args = Vec::with_capacity(count.min(64));
    let mut total = 0usize;
    for _ in 0..count {
        let Some((header, next)) = line(buf, pos)? else {
            return Ok(Parsed::Incomplete);
        };
        if header.first() != Some(&b'$') {
            return Err(ParseError::Protocol("expected '$'"));
        }
        let len = number(&header[1..])
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(ParseError::Protocol("invalid bulk length"))?;
        total = total.saturating_add(len);
        if total > limits.command_bytes_max {
            return Err(ParseError::TooLarge(limits.command_bytes_max));
        }
        let end = next + len;
        if buf.len() < end + 2 {
            return Ok(Parsed::Incomplete);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ParseError::Protocol("expected CRLF after bulk"));
        }
        args.push(buf[next..end].to_vec());
        pos = end + 2;
    }
    Ok(Parsed::Command(args, pos))
}

fn inline(buf: &[u8]) -> Result<Parsed, ParseError> {
    // Inline commands may also end with a bare LF (telnet, nc).
    let end = match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end <= LINE_BYTES_MAX => end,
        Some(_) => return Err(ParseError::Protocol("line too long")),
        None if buf.len() > LINE_BYTES_MAX => return Err(ParseError::Protocol("line too long")),
        None => return Ok(Parsed::Incomplete),
    };
    let text = buf[..end].strip_suffix(b"\r").unwrap_or(&buf[..end]);
    let args = text
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Ok(Parsed::Command(args, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ParseLimits = ParseLimits {
        command_bytes_max: 1024,
        args_max: 8,
    };

    fn args(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_overrun() {
        for input in ringkv_core::testing::parser_inputs(50_000, b"*$\r\n-:+0123456789") {
            let mut rest = &input[..];
            while let Ok(Parsed::Command(_, used)) = parse(rest, LIMITS) {
                assert!(used > 0 && used <= rest.len(), "{input:?}");
                rest = &rest[used..];
            }
        }
    }

    #[test]
    fn parses_multibulk_incrementally_and_inline() {
        let command = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        for cut in 0..command.len() {
            assert_eq!(
                parse(&command[..cut], LIMITS),
                Ok(Parsed::Incomplete),
                "cut {cut}"
            );
        }
        assert_eq!(
            parse(command, LIMITS),
            Ok(Parsed::Command(args(&["SET", "k", "hello"]), command.len()))
        );
        assert_eq!(
            parse(b"PING  x\r\nrest", LIMITS),
            Ok(Parsed::Command(args(&["PING", "x"]), 9))
        );
        assert_eq!(parse(b"*0\r\n", LIMITS), Ok(Parsed::Command(vec![], 4)));
    }

    #[test]
    fn refuses_oversized_and_malformed_input_without_allocating() {
        let huge_count = b"*999999999999\r\n";
        assert!(parse(huge_count, LIMITS).is_err());
        let huge_bulk = b"*1\r\n$99999999999\r\n";
        assert_eq!(parse(huge_bulk, LIMITS), Err(ParseError::TooLarge(1024)));
        for bad in [
            &b"*x\r\n"[..],
            b"*1\r\n:1\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$1\r\nab\r\n",
            b"*9\r\n",
        ] {
            assert!(parse(bad, LIMITS).is_err(), "{bad:?} accepted");
        }
        let long_line = vec![b'a'; LINE_BYTES_MAX + 2];
        assert!(parse(&long_line, LIMITS).is_err());
    }
}
