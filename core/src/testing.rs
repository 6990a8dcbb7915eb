//! Helpers for tests of this crate and of its hosts (feature `testing`).

/// Deterministic pseudo-random inputs for parsers (xorshift64*): lengths up to 64, one
/// byte in eight drawn from `alphabet` (bytes that get a parser past its first checks,
/// e.g. `b"*$\r\n-:+0123456789"` for RESP), the rest arbitrary.
pub fn parser_inputs(count: usize, alphabet: &'static [u8]) -> impl Iterator<Item = Vec<u8>> {
    assert!(
        !alphabet.is_empty(),
        "parser_inputs needs a non-empty alphabet"
    );
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..count).map(move |_| {
        let len = (next() % 64) as usize;
        (0..len)
            .map(|_| {
                let r = next();
                match r % 8 {
                    0 => alphabet[(r >> 8) as usize % alphabet.len()],
                    _ => (r >> 16) as u8,
                }
            })
            .collect()
    })
}
