//! Parses arbitrary bytes as RESP requests the way a connection does (repeatedly, from
//! the front): never a panic, never more bytes consumed than given, and every command
//! within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringkv::resp::parse::{parse, ParseLimits, Parsed};

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits {
        command_bytes_max: 4096,
        args_max: 64,
    };
    let mut rest = data;
    while let Ok(Parsed::Command(args, used)) = parse(rest, limits) {
        assert!(used > 0 && used <= rest.len());
        assert!(args.len() <= limits.args_max.max(LINE_WORDS_MAX));
        rest = &rest[used..];
    }
});

/// Inline commands are bounded by the line length instead of `args_max`.
const LINE_WORDS_MAX: usize = ringkv::resp::parse::LINE_BYTES_MAX;
