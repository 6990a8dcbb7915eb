//! The run's trace: a hash of every event (reproducibility) and the recent lines
//! (readable failure reports).

use std::collections::VecDeque;

/// What a trace line is about, to show the lines relevant to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A client op or peer message about this user key.
    Key(Vec<u8>),
    /// Faults: relevant to every key.
    Global,
    /// Gossip, timers and the like.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub time_ms: u64,
    pub scope: Scope,
    pub text: String,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>7} ms  {}", self.time_ms, self.text)
    }
}

/// FNV-1a, 64 bit: stable across platforms and Rust versions, unlike `DefaultHasher`.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[derive(Debug)]
pub struct Trace {
    hash: Fnv,
    lines: VecDeque<Line>,
    lines_max: usize,
    events: u64,
    /// Print every line as it is recorded (`sim --trace`).
    echo: bool,
}

impl Trace {
    pub fn new(lines_max: usize, echo: bool) -> Self {
        Trace {
            hash: Fnv(0xcbf2_9ce4_8422_2325),
            lines: VecDeque::new(),
            lines_max,
            events: 0,
            echo,
        }
    }

    pub fn record(&mut self, time_ms: u64, scope: Scope, text: String) {
        self.hash.add(&time_ms.to_le_bytes());
        self.hash.add(text.as_bytes());
        self.events += 1;
        let line = Line {
            time_ms,
            scope,
            text,
        };
        if self.echo {
            println!("{line}");
        }
        if self.lines.len() == self.lines_max {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// Hash of everything recorded: equal for equal runs.
    pub fn hash(&self) -> u64 {
        self.hash.0
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// The last `k` retained lines about `key` (or global) with time in `from..=to`.
    pub fn about(&self, key: &[u8], from_ms: u64, to_ms: u64, k: usize) -> Vec<&Line> {
        self.matching(from_ms, to_ms, k, |l| match &l.scope {
            Scope::Key(k) => k == key,
            Scope::Global => true,
            Scope::Other => false,
        })
    }

    /// The last `k` retained lines with time in `from..=to` that `keep` accepts.
    pub fn matching(
        &self,
        from_ms: u64,
        to_ms: u64,
        k: usize,
        keep: impl Fn(&Line) -> bool,
    ) -> Vec<&Line> {
        let mut out: Vec<&Line> = self
            .lines
            .iter()
            .rev()
            .filter(|l| (from_ms..=to_ms).contains(&l.time_ms) && keep(l))
            .take(k)
            .collect();
        out.reverse();
        out
    }
}

/// `{:?}` of `value` with byte lists that are printable ASCII (`[107, 101, 121]`)
/// shown as strings (`"key"`), so keys and values in messages are readable.
pub fn pretty_debug(value: &impl std::fmt::Debug) -> String {
    let raw = format!("{value:?}");
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw.as_str();
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let text = after.find(']').and_then(|close| {
            let bytes: Option<Vec<u8>> = after[..close]
                .split(", ")
                .map(|n| {
                    n.parse::<u8>()
                        .ok()
                        .filter(|b| b.is_ascii_graphic() || *b == b' ')
                })
                .collect();
            Some((bytes?, close))
        });
        match text {
            Some((bytes, close)) if !bytes.is_empty() => {
                out.push_str(&format!("{:?}", String::from_utf8_lossy(&bytes)));
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_lists_become_strings() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct M {
            key: Vec<u8>,
            value: Option<Vec<u8>>,
            raw: Vec<u8>,
            tags: [u64; 2],
            empty: Vec<u8>,
        }
        let m = M {
            key: b"key-1".to_vec(),
            value: Some(b"c1-7".to_vec()),
            raw: vec![0, 255],
            tags: [300, 2],
            empty: vec![],
        };
        assert_eq!(
            pretty_debug(&m),
            r#"M { key: "key-1", value: Some("c1-7"), raw: [0, 255], tags: [300, 2], empty: [] }"#
        );
    }

    #[test]
    fn hash_covers_everything_and_lines_are_bounded() {
        let mut a = Trace::new(3, false);
        let mut b = Trace::new(100, false);
        for t in [&mut a, &mut b] {
            t.record(1, Scope::Key(b"k".to_vec()), "put".into());
            t.record(2, Scope::Other, "gossip".into());
            t.record(3, Scope::Global, "crash n1".into());
            t.record(4, Scope::Key(b"j".to_vec()), "get".into());
            t.record(5, Scope::Key(b"k".to_vec()), "reply".into());
        }
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.events(), 5);
        let texts = |v: Vec<&Line>| v.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
        assert_eq!(
            texts(b.about(b"k", 0, 10, 10)),
            ["put", "crash n1", "reply"]
        );
        assert_eq!(texts(b.about(b"k", 0, 10, 2)), ["crash n1", "reply"]);
        assert_eq!(texts(b.about(b"k", 2, 4, 10)), ["crash n1"]);
        // `a` kept only its last 3 lines.
        assert_eq!(texts(a.about(b"k", 0, 10, 10)), ["crash n1", "reply"]);
        let mut c = Trace::new(100, false);
        c.record(1, Scope::Other, "x".into());
        assert_ne!(c.hash(), b.hash());
    }
}
