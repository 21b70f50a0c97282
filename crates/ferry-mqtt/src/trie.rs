//! Subscription trie: one node per topic level, `+` and `#` are ordinary child keys.
//! Matching a topic visits at most (exact + `+` + `#`) children per level, so the cost
//! depends on the topic's depth and the number of matches, not on the number of filters.

use std::collections::HashMap;
use std::hash::Hash;

/// A trie from topic filters to values keyed by `K` (e.g. a client id), so that one key has
/// at most one value per filter (a re-subscription replaces).
#[derive(Debug)]
pub struct Trie<K, V> {
    root: Node<K, V>,
    len: usize,
}

#[derive(Debug)]
struct Node<K, V> {
    children: HashMap<Box<str>, Node<K, V>>,
    values: HashMap<K, V>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            values: HashMap::new(),
        }
    }
}

impl<K, V> Default for Trie<K, V> {
    fn default() -> Self {
        Trie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<K: Eq + Hash, V> Trie<K, V> {
    /// Number of (filter, key) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts or replaces; returns the previous value for this key and filter.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let old = node.values.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        let mut node = &self.root;
        for level in filter.split('/') {
            node = node.children.get(level)?;
        }
        node.values.get(key)
    }

    pub fn get_mut(&mut self, filter: &str, key: &K) -> Option<&mut V> {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.get_mut(level)?;
        }
        node.values.get_mut(key)
    }

    /// Removes one entry, pruning nodes left empty.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let levels: Vec<&str> = filter.split('/').collect();
        let out = Self::remove_in(&mut self.root, &levels, key);
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    fn remove_in(node: &mut Node<K, V>, levels: &[&str], key: &K) -> Option<V> {
        match levels.split_first() {
            None => node.values.remove(key),
            Some((first, rest)) => {
                let child = node.children.get_mut(*first)?;
                let out = Self::remove_in(child, rest, key);
                if child.values.is_empty() && child.children.is_empty() {
                    node.children.remove(*first);
                }
                out
            }
        }
    }

    /// Every filter with at least one entry, in no particular order (a walk of the whole
    /// trie: for listings, not for routing).
    pub fn filters(&self) -> Vec<String> {
        let mut out = Vec::new();
        Self::collect(&self.root, &mut Vec::new(), &mut out);
        out
    }

    fn collect<'a>(node: &'a Node<K, V>, path: &mut Vec<&'a str>, out: &mut Vec<String>) {
        for (level, child) in &node.children {
            path.push(level);
            if !child.values.is_empty() {
                out.push(path.join("/"));
            }
            Self::collect(child, path, out);
            path.pop();
        }
    }

    /// Calls `f` with every value whose filter matches `topic`. Topics starting with `$`
    /// are not matched by a wildcard in the first level.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&V)) {
        self.for_each_match_entry(topic, |_, v| f(v));
    }

    /// Calls `f` with the key of every entry whose filter matches `topic`.
    pub fn for_each_match_key(&self, topic: &str, mut f: impl FnMut(&K)) {
        self.for_each_match_entry(topic, |k, _| f(k));
    }

    pub fn for_each_match_entry(&self, topic: &str, mut f: impl FnMut(&K, &V)) {
        let dollar = topic.starts_with('$');
        Self::walk(&self.root, topic.split('/'), dollar, &mut f);
    }

    fn walk(
        node: &Node<K, V>,
        mut levels: std::str::Split<'_, char>,
        skip_wild: bool,
        f: &mut impl FnMut(&K, &V),
    ) {
        if !skip_wild && let Some(hash) = node.children.get("#") {
            hash.values.iter().for_each(|(k, v)| f(k, v));
        }
        match levels.next() {
            None => node.values.iter().for_each(|(k, v)| f(k, v)),
            Some(first) => {
                if let Some(child) = node.children.get(first) {
                    Self::walk(child, levels.clone(), false, f);
                }
                if !skip_wild && let Some(child) = node.children.get("+") {
                    Self::walk(child, levels, false, f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::matches;

    fn matched(t: &Trie<u32, u32>, topic: &str) -> Vec<u32> {
        let mut v = Vec::new();
        t.for_each_match(topic, |x| v.push(*x));
        v.sort();
        v
    }

    #[test]
    fn filters_lists_every_filter_with_an_entry() {
        let mut t: Trie<u32, u32> = Trie::default();
        for (i, f) in ["a/b", "a/#", "/", "+/x", "a/b"].iter().enumerate() {
            t.insert(f, i as u32, 0);
        }
        t.insert("gone/soon", 9, 0);
        t.remove("gone/soon", &9);
        let mut got = t.filters();
        got.sort();
        assert_eq!(got, vec!["+/x", "/", "a/#", "a/b"]);
    }

    #[test]
    fn trie_agrees_with_reference_matcher() {
        let filters = [
            "#",
            "+",
            "a",
            "a/b",
            "a/+",
            "a/#",
            "+/b",
            "+/+",
            "a/b/c",
            "a/+/c",
            "/+",
            "+/",
            "/",
            "$SYS/#",
            "$SYS/+",
            "a//c",
            "a/+/#",
            "#/",
            "sport/tennis/player1/#",
        ];
        let topics = [
            "a",
            "a/b",
            "a/b/c",
            "/a",
            "a/",
            "/",
            "$SYS/x",
            "$SYS",
            "a//c",
            "b",
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "x/y/z/w",
        ];
        let mut t = Trie::default();
        for (i, f) in filters.iter().enumerate() {
            if crate::topic::validate_filter(f).is_ok() {
                t.insert(f, i as u32, i as u32);
            }
        }
        for topic in topics {
            let mut expected: Vec<u32> = filters
                .iter()
                .enumerate()
                .filter(|(_, f)| crate::topic::validate_filter(f).is_ok() && matches(f, topic))
                .map(|(i, _)| i as u32)
                .collect();
            expected.sort();
            assert_eq!(matched(&t, topic), expected, "topic {topic}");
        }
    }

    #[test]
    fn remove_prunes_and_counts() {
        let mut t = Trie::default();
        t.insert("a/b", 1u32, 1u32);
        t.insert("a/b", 2, 2);
        assert_eq!(t.insert("a/b", 1, 10), Some(1));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove("a/b", &1), Some(10));
        assert_eq!(t.remove("a/b", &1), None);
        assert_eq!(t.remove("a/b", &2), Some(2));
        assert!(t.is_empty());
        assert!(t.root.children.is_empty());
    }
}
