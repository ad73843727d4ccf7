//! Answers derived from a store, kept for exactly as long as the store's
//! [`ChangeToken`] says nothing changed: the key behind an API key's hash, and the
//! serialised view of a job. A poll of `GET /api/v1/jobs/{id}` then costs a hash lookup
//! instead of two read transactions, a JSON decode and an encode, while a key revoked by
//! `docpipe keys revoke` in another process, or a job moved by the pipeline, is seen by the
//! very next request (the commit changes the token).
//!
//! Entries are stored under the token read *before* the data was read, so an entry can
//! only be older than its token claims, never newer: a change committed in between makes
//! the next token differ and the entry unreachable. Stores without a token (`None`) keep
//! nothing. Every entry shares one generation; a new token clears them all, and the map is
//! capped, so memory stays bounded whatever callers send.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use docpipe_core::ChangeToken;

pub(crate) struct Kept<K, V> {
    inner: Mutex<Generation<K, V>>,
    capacity: usize,
}

struct Generation<K, V> {
    token: Option<ChangeToken>,
    entries: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Clone> Kept<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Generation {
                token: None,
                entries: HashMap::new(),
            }),
            capacity,
        }
    }

    /// The entry for `key` if it was stored under `token`.
    pub(crate) fn get<Q>(&self, token: Option<ChangeToken>, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let token = token?;
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.token != Some(token) {
            return None;
        }
        inner.entries.get(key).cloned()
    }

    /// Keeps `value`, read after `token` was.
    pub(crate) fn put(&self, token: Option<ChangeToken>, key: K, value: V) {
        let Some(token) = token else { return };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.token != Some(token) || inner.entries.len() >= self.capacity {
            inner.entries.clear();
            inner.token = Some(token);
        }
        inner.entries.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(n: u8) -> Option<ChangeToken> {
        let mut t = [0u8; 48];
        t[0] = n;
        Some(ChangeToken(t))
    }

    #[test]
    fn an_entry_lives_until_the_token_changes() {
        let kept = Kept::new(8);
        kept.put(token(1), "a".to_owned(), 1);
        assert_eq!(kept.get(token(1), "a"), Some(1));
        assert_eq!(kept.get(token(2), "a"), None, "a commit happened");
        // Back to the first token cannot revive it once a newer generation was stored.
        kept.put(token(2), "b".to_owned(), 2);
        assert_eq!(kept.get(token(1), "a"), None);
        assert_eq!(kept.get(token(2), "b"), Some(2));
    }

    #[test]
    fn nothing_is_kept_without_a_token_and_the_map_is_capped() {
        let kept = Kept::new(2);
        kept.put(None, "a".to_owned(), 1);
        assert_eq!(kept.get(None, "a"), None);
        assert_eq!(kept.get(token(1), "a"), None);
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            kept.put(token(1), (*k).to_owned(), i);
        }
        assert_eq!(kept.get(token(1), "c"), Some(2));
        assert!(kept.inner.lock().unwrap().entries.len() <= 2);
    }
}
