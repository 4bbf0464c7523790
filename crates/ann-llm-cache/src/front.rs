//! The in-memory front of the cache: recent answers by key, bounded in entries and bytes.
//!
//! Two generations: answers go into the current one; when it holds half the allowance it becomes the
//! previous one (the older previous one is dropped). A hit in the previous generation moves the
//! answer back to the current one, so recently used answers stay and memory never exceeds the bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ann_llm::ChatResponse;

pub(crate) struct Front {
    max_entries: usize,
    max_bytes: usize,
    generations: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<String, Arc<ChatResponse>>,
    current_bytes: usize,
    previous: HashMap<String, Arc<ChatResponse>>,
}

fn size(key: &str, response: &ChatResponse) -> usize {
    key.len() + response.text.len() + response.model.len() + std::mem::size_of::<ChatResponse>() + 64
}

impl Front {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self { max_entries, max_bytes, generations: Mutex::new(Generations::default()) }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Arc<ChatResponse>> {
        let mut g = self.generations.lock().expect("front lock");
        if let Some(found) = g.current.get(key) {
            return Some(found.clone());
        }
        let (key, found) = g.previous.remove_entry(key)?;
        self.insert_locked(&mut g, key, found.clone());
        Some(found)
    }

    pub(crate) fn insert(&self, key: &str, response: Arc<ChatResponse>) {
        let mut g = self.generations.lock().expect("front lock");
        self.insert_locked(&mut g, key.to_owned(), response);
    }

    fn insert_locked(&self, g: &mut Generations, key: String, response: Arc<ChatResponse>) {
        let bytes = size(&key, &response);
        if self.max_entries == 0 || bytes * 2 > self.max_bytes {
            g.previous.remove(&key);
            if let Some(old) = g.current.remove(&key) {
                g.current_bytes -= size(&key, &old);
            }
            return;
        }
        g.previous.remove(&key);
        if let Some(old) = g.current.insert(key.clone(), response) {
            g.current_bytes -= size(&key, &old);
        }
        g.current_bytes += bytes;
        if g.current.len() * 2 >= self.max_entries || g.current_bytes * 2 >= self.max_bytes {
            g.previous = std::mem::take(&mut g.current);
            g.current_bytes = 0;
        }
    }

    /// Forget everything (after an import changed stored answers).
    pub(crate) fn clear(&self) {
        *self.generations.lock().expect("front lock") = Generations::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> Arc<ChatResponse> {
        Arc::new(ChatResponse::text("m", text))
    }

    #[test]
    fn bounded_and_recent_answers_stay() {
        let front = Front::new(8, 1 << 20);
        for i in 0..100 {
            front.insert(&format!("k{i}"), answer("a"));
            // k0 is used all the time: it must survive the churn.
            assert!(front.get("k0").is_some(), "k0 evicted at {i}");
        }
        let g = front.generations.lock().unwrap();
        assert!(g.current.len() + g.previous.len() <= 8);
    }

    #[test]
    fn byte_bound_and_oversized_answers() {
        let front = Front::new(1000, 4096);
        front.insert("big", answer(&"x".repeat(3000)));
        assert!(front.get("big").is_none(), "an answer over half the bound is never kept");
        for i in 0..100 {
            front.insert(&format!("k{i}"), answer(&"y".repeat(200)));
        }
        let g = front.generations.lock().unwrap();
        let bytes: usize = g.current.iter().chain(g.previous.iter()).map(|(k, v)| size(k, v)).sum();
        assert!(bytes <= 4096, "{bytes}");
        drop(g);
        front.insert("k99", answer("replaced"));
        assert_eq!(front.get("k99").unwrap().text, "replaced");
        front.clear();
        assert!(front.get("k99").is_none());
        assert!(Front::new(0, 4096).get("k").is_none());
    }
}
