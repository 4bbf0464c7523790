//! The shared-prefix cache: the model's state after prompt prefixes that end where messages end,
//! least recently used first out. The snapshots taken in one prefill share one copy of its keys
//! and values (each is a prefix of it), so a prompt's message ends cost the memory of the prompt
//! once, not once per message.

use std::sync::Arc;

use crate::llama::KvCache;

/// The model's state after a prompt prefix: the first `tokens.len()` positions of `cache` and the
/// logits of the next token.
struct Snapshot {
    tokens: Vec<u32>,
    cache: Arc<KvCache>,
    logits: Vec<f32>,
    last_used: u64,
}

/// Least-recently-used snapshots, bounded by the positions of the key/value copies they hold.
pub(crate) struct PrefixCache {
    entries: Vec<Snapshot>,
    capacity_tokens: usize,
    clock: u64,
}

impl PrefixCache {
    pub(crate) fn new(capacity_tokens: usize) -> Self {
        Self { entries: Vec::new(), capacity_tokens, clock: 0 }
    }

    /// The state after the longest cached prefix of `tokens` whose length is one of `lengths`.
    pub(crate) fn lookup(&mut self, tokens: &[u32], lengths: &[usize]) -> Option<(KvCache, Vec<f32>)> {
        self.clock += 1;
        let clock = self.clock;
        let best = self
            .entries
            .iter_mut()
            .filter(|s| lengths.contains(&s.tokens.len()) && tokens.starts_with(&s.tokens))
            .max_by_key(|s| s.tokens.len())?;
        best.last_used = clock;
        Some((best.cache.prefix(best.tokens.len()), best.logits.clone()))
    }

    /// Whether a snapshot after `tokens` would be kept (and is not already).
    pub(crate) fn wants(&self, tokens: &[u32]) -> bool {
        self.capacity_tokens > 0
            && tokens.len() <= self.capacity_tokens
            && !self.entries.iter().any(|s| s.tokens == tokens)
    }

    /// Keep the state after each `(end, logits)` of `tokens`, whose keys and values are the first
    /// `end` positions of `cache`: one copy for them all.
    pub(crate) fn insert(&mut self, tokens: &[u32], cache: &KvCache, at: Vec<(usize, Vec<f32>)>) {
        let at: Vec<(usize, Vec<f32>)> = at.into_iter().filter(|(end, _)| self.wants(&tokens[..*end])).collect();
        let Some(longest) = at.iter().map(|(end, _)| *end).max() else { return };
        let shared = Arc::new(cache.prefix(longest));
        for (end, logits) in at {
            self.clock += 1;
            let snapshot =
                Snapshot { tokens: tokens[..end].to_vec(), cache: shared.clone(), logits, last_used: self.clock };
            self.entries.push(snapshot);
        }
        while self.held_tokens() > self.capacity_tokens {
            let oldest = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last_used).expect("not empty");
            self.entries.swap_remove(oldest);
        }
    }

    /// Positions of the distinct key/value copies the snapshots hold.
    fn held_tokens(&self) -> usize {
        let mut seen: Vec<*const KvCache> = Vec::new();
        let mut held = 0;
        for s in &self.entries {
            let ptr = Arc::as_ptr(&s.cache);
            if !seen.contains(&ptr) {
                seen.push(ptr);
                held += s.cache.len();
            }
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of `len` positions whose values name their position.
    fn cache(len: usize) -> KvCache {
        let values: Vec<f32> = (0..len).map(|p| p as f32).collect();
        KvCache { layers: vec![(values.clone(), values)], len }
    }

    #[test]
    fn snapshots_of_one_prefill_share_one_copy_and_are_evicted_by_what_they_hold() {
        let mut pc = PrefixCache::new(10);
        let tokens: Vec<u32> = (0..8).collect();
        pc.insert(&tokens, &cache(8), vec![(3, vec![3.0]), (8, vec![8.0])]);
        assert_eq!(pc.entries.len(), 2);
        assert_eq!(pc.held_tokens(), 8, "one copy of 8 positions, not 3 + 8");
        let (kv, logits) = pc.lookup(&[0, 1, 2, 9], &[3, 4]).expect("the 3-token prefix");
        assert_eq!((kv.len(), kv.layers[0].0.clone(), logits), (3, vec![0.0, 1.0, 2.0], vec![3.0]));
        assert!(pc.lookup(&[0, 1, 2, 9], &[4]).is_none(), "only the given lengths count");
        assert!(!pc.wants(&tokens[..3]) && pc.wants(&tokens[..4]));
        // Another prefill of 5 positions: 13 held is over 10. Evicting the 8-token snapshot (the
        // least recently used) frees nothing while the 3-token one still holds the copy, so that
        // goes too.
        pc.insert(&[7, 7, 7, 7, 7], &cache(5), vec![(5, vec![5.0])]);
        assert_eq!((pc.entries.len(), pc.held_tokens()), (1, 5));
        assert!(pc.lookup(&[7, 7, 7, 7, 7, 1], &[5]).is_some(), "the newest stays");
        // Nothing is kept when the cache is off or the prefix is longer than it.
        let mut off = PrefixCache::new(0);
        off.insert(&tokens, &cache(8), vec![(8, vec![])]);
        assert!(off.entries.is_empty());
    }
}
