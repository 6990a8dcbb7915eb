//! Counters (`increment`, `getCounter`): how the bytes `Update::Add` reads and writes
//! reach JavaScript.
//!
//! A counter is stored as the core stores it, a signed 64-bit integer in ASCII decimal
//! (`b"-42"`), never in the package's value encoding: that is what RESP `INCR`/`GET`
//! read and write, so the package and a Redis client agree on the same key. It also
//! means `get(key)` of a counter fails with CORRUPT_VALUE (an encoded value starts with
//! the format version byte 1; ASCII digits and `-` never do): read counters with
//! `getCounter(key)` or `get(key, { encoding: 'raw' })`.
//!
//! JS sees a count as a `number` while it is a safe integer (|n| ≤ 2^53 − 1), where a
//! number is exact, and as a `BigInt` beyond, where a number would round. A caller
//! that wants one type asks for `BigInt` always (a `bigint` delta, `{ bigint: true }`).

/// `Number.MAX_SAFE_INTEGER`: every integer up to it is exact as an f64.
pub const SAFE_INTEGER_MAX: i64 = (1 << 53) - 1;

/// The integer in `bytes` by the rule `Update::Add` applies (the core's, so that
/// `getCounter` never reads a count out of a value `increment` would refuse).
pub use ringkv_core::node::parse_integer as parse;

/// How a count is handed to JS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Exact as a JS number.
    Number(i64),
    /// Beyond ±(2^53 − 1), or a BigInt was asked for.
    BigInt(i64),
}

pub fn count(n: i64, bigint: bool) -> Count {
    if bigint || !(-SAFE_INTEGER_MAX..=SAFE_INTEGER_MAX).contains(&n) {
        Count::BigInt(n)
    } else {
        Count::Number(n)
    }
}

/// A JS number as a delta: it must be an integer that the number holds exactly, so the
/// sum the core computes is the one the caller meant (`increment(k, 2 ** 60)` would add
/// a rounded value; pass `2n ** 60n`).
pub fn delta_from_f64(n: f64) -> Option<i64> {
    let exact = n.fract() == 0.0 && n.abs() <= SAFE_INTEGER_MAX as f64;
    exact.then_some(n as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_core_writes_and_nothing_else() {
        for n in [0, 1, -1, 42, i64::MAX, i64::MIN, SAFE_INTEGER_MAX + 1] {
            assert_eq!(parse(n.to_string().as_bytes()), Some(n));
        }
        // An encoded value (version byte 1 first), text, overflow, empty, and what
        // Redis's INCR refuses: a `+`, leading zeros, `-0`, spaces.
        for bad in [
            &b"\x01\x04"[..],
            b"abc",
            b"9223372036854775808",
            b"",
            b"1.5",
            b" 1",
            b"+5",
            b"007",
            b"-0",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn counts_are_numbers_only_while_exact() {
        assert_eq!(count(5, false), Count::Number(5));
        assert_eq!(
            count(-SAFE_INTEGER_MAX, false),
            Count::Number(-SAFE_INTEGER_MAX)
        );
        assert_eq!(
            count(SAFE_INTEGER_MAX, false),
            Count::Number(SAFE_INTEGER_MAX)
        );
        assert_eq!(
            count(SAFE_INTEGER_MAX + 1, false),
            Count::BigInt(SAFE_INTEGER_MAX + 1)
        );
        assert_eq!(count(i64::MIN, false), Count::BigInt(i64::MIN));
        assert_eq!(count(5, true), Count::BigInt(5));
    }

    #[test]
    fn deltas_must_be_exact_integers() {
        assert_eq!(delta_from_f64(1.0), Some(1));
        assert_eq!(delta_from_f64(-7.0), Some(-7));
        assert_eq!(
            delta_from_f64(SAFE_INTEGER_MAX as f64),
            Some(SAFE_INTEGER_MAX)
        );
        assert_eq!(delta_from_f64(2f64.powi(60)), None);
        assert_eq!(delta_from_f64(0.5), None);
        assert_eq!(delta_from_f64(f64::NAN), None);
        assert_eq!(delta_from_f64(f64::INFINITY), None);
    }
}
