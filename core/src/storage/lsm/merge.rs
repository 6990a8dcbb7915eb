use crate::storage::error::Result;

/// A key and its newest value, `None` for a tombstone.
pub type Entry = (Vec<u8>, Option<Vec<u8>>);
pub type Source = Box<dyn Iterator<Item = Result<Entry>> + Send>;

/// Merges sorted sources into one sorted stream with one entry per key. Sources are
/// given newest first: on equal keys the lowest-indexed source wins and the others'
/// entries are skipped. Tombstones are passed through; the consumer decides.
///
/// A linear scan over the heads is used instead of a heap: there are rarely more than
/// twenty sources (memtables, L0 tables, one per deeper level).
pub struct MergeIter {
    sources: Vec<Source>,
    heads: Vec<Option<Entry>>,
    started: bool,
    failed: bool,
}

impl MergeIter {
    pub fn new(sources: Vec<Source>) -> Self {
        let heads = sources.iter().map(|_| None).collect();
        Self {
            sources,
            heads,
            started: false,
            failed: false,
        }
    }

    fn refill(&mut self, index: usize) -> Result<()> {
        self.heads[index] = self.sources[index].next().transpose()?;
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Entry>> {
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                self.refill(i)?;
            }
        }
        let mut winner: Option<usize> = None;
        for (i, head) in self.heads.iter().enumerate() {
            if let Some((key, _)) = head {
                let better = match winner.and_then(|w| self.heads[w].as_ref()) {
                    Some((best, _)) => key < best,
                    None => true,
                };
                if better {
                    winner = Some(i);
                }
            }
        }
        let Some(winner) = winner else {
            return Ok(None);
        };
        let entry = self.heads[winner].take();
        self.refill(winner)?;
        if let Some((key, _)) = &entry {
            for i in 0..self.heads.len() {
                if self.heads[i].as_ref().is_some_and(|(k, _)| k == key) {
                    self.refill(i)?;
                }
            }
        }
        Ok(entry)
    }
}

impl Iterator for MergeIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(entry) => entry.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(entries: &[(&str, Option<&str>)]) -> Source {
        let v: Vec<Result<Entry>> = entries
            .iter()
            .map(|(k, v)| Ok((k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))))
            .collect();
        Box::new(v.into_iter())
    }

    #[test]
    fn newest_source_wins_and_keys_are_unique() {
        let merged: Vec<Entry> = MergeIter::new(vec![
            source(&[("b", Some("new")), ("d", None)]),
            source(&[("a", Some("1")), ("b", Some("old")), ("d", Some("4"))]),
            source(&[("c", Some("3")), ("d", Some("older"))]),
        ])
        .collect::<Result<_>>()
        .expect("no errors");
        let got: Vec<(String, Option<String>)> = merged
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into(),
                    v.map(|v| String::from_utf8_lossy(&v).into()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), Some("1".into())),
                ("b".into(), Some("new".into())),
                ("c".into(), Some("3".into())),
                ("d".into(), None),
            ]
        );
    }
}
