//! A map from relative paths to values, kept sorted by path in two vectors.
//!
//! The manifest's 20k file records are read by every sync in a fresh process. Built as a
//! `BTreeMap<String, _>`, they cost an allocation per path, a second copy of every record (the
//! tree's nodes) and a bulk build; here every path is appended to one string and the records to
//! one vector, in the order they are decoded. Lookups are binary searches; changes come in
//! batches (a sync's delta, a log's deltas) and are merged in one pass.
//!
//! Written by hand: the crates that keep a sorted vector as a map (`sorted-vec`, `vecmap`) hold
//! an allocation per key.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Paths and their values, sorted by path (byte order, as `str`'s `Ord`), each path once.
///
/// ```
/// use stoker_sync::path_map::PathMap;
/// let mut map: PathMap<u32> = [("b/x.json".to_owned(), 2), ("a.json".to_owned(), 1)]
///     .into_iter()
///     .collect();
/// assert_eq!(map.get("a.json"), Some(&1));
/// map.apply_changes([("a.json".to_owned(), None), ("b/y.json".to_owned(), Some(3))]);
/// assert_eq!(map.keys().collect::<Vec<_>>(), ["b/x.json", "b/y.json"]);
/// assert_eq!(map.with_prefix("b/").count(), 2);
/// ```
#[derive(Clone)]
pub struct PathMap<V> {
    /// Every path, back to back (a removed path's bytes stay until they are half of it, see
    /// [`PathMap::compact_if_sparse`]).
    paths: String,
    /// Where each path is in `paths`, and its value, sorted by path.
    slots: Vec<(Range<usize>, V)>,
}

impl<V> Default for PathMap<V> {
    fn default() -> Self {
        PathMap {
            paths: String::new(),
            slots: Vec::new(),
        }
    }
}

impl<V> PathMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        PathMap::default()
    }

    /// An empty map with room for `len` paths of `path_bytes` bytes in all.
    pub fn with_capacity(len: usize, path_bytes: usize) -> Self {
        PathMap {
            paths: String::with_capacity(path_bytes),
            slots: Vec::with_capacity(len),
        }
    }

    /// How many paths it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when it holds no path.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn path_at(&self, range: &Range<usize>) -> &str {
        self.paths.get(range.clone()).unwrap_or_default()
    }

    fn position(&self, path: &str) -> Result<usize, usize> {
        self.slots
            .binary_search_by(|(range, _)| self.path_at(range).cmp(path))
    }

    fn store(&mut self, path: &str) -> Range<usize> {
        let start = self.paths.len();
        self.paths.push_str(path);
        start..self.paths.len()
    }

    /// Appends `path`, which must sort after every path in the map (a decoder reading sorted
    /// records builds the map this way, with no sorting). Gives `value` back when `path` does
    /// not sort last.
    pub fn push_sorted(&mut self, path: &str, value: V) -> Result<(), V> {
        if let Some((last, _)) = self.slots.last()
            && self.path_at(last) >= path
        {
            return Err(value);
        }
        let range = self.store(path);
        self.slots.push((range, value));
        Ok(())
    }

    /// The value at `path`.
    pub fn get(&self, path: &str) -> Option<&V> {
        let index = self.position(path).ok()?;
        self.slots.get(index).map(|(_, value)| value)
    }

    /// The value at `path`, to change in place.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut V> {
        let index = self.position(path).ok()?;
        self.slots.get_mut(index).map(|(_, value)| value)
    }

    /// True when it holds `path`.
    pub fn contains_key(&self, path: &str) -> bool {
        self.position(path).is_ok()
    }

    /// Sets the value at `path`, returning the one it replaces. Moves every later record: for a
    /// batch, [`PathMap::apply_changes`] is one pass.
    pub fn insert(&mut self, path: &str, value: V) -> Option<V> {
        match self.position(path) {
            Ok(index) => self
                .slots
                .get_mut(index)
                .map(|(_, old)| std::mem::replace(old, value)),
            Err(index) => {
                let range = self.store(path);
                self.slots.insert(index, (range, value));
                None
            }
        }
    }

    /// Removes `path`, returning its value.
    pub fn remove(&mut self, path: &str) -> Option<V> {
        let index = self.position(path).ok()?;
        let (_, value) = self.slots.remove(index);
        self.compact_if_sparse();
        Some(value)
    }

    /// Copies the paths still used into a new string once removed paths are more than half of
    /// it, so a map that keeps changing does not keep growing.
    fn compact_if_sparse(&mut self) {
        let used: usize = self.slots.iter().map(|(range, _)| range.len()).sum();
        if self.paths.len() <= 2 * used + 4096 {
            return;
        }
        let mut paths = String::with_capacity(used);
        for (range, _) in &mut self.slots {
            let start = paths.len();
            paths.push_str(self.paths.get(range.clone()).unwrap_or_default());
            *range = start..paths.len();
        }
        self.paths = paths;
    }

    /// Sets (`Some`) or removes (`None`) each path; of several changes to one path, the last
    /// wins. Values of paths already there are replaced in place; the records are moved once,
    /// and only when paths come or go.
    pub fn apply_changes<P: AsRef<str>>(
        &mut self,
        changes: impl IntoIterator<Item = (P, Option<V>)>,
    ) {
        let mut changes: Vec<(P, Option<V>)> = changes.into_iter().collect();
        // Stable: of equal paths, the last change is the last of its run.
        changes.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut removed = Vec::new();
        let mut added = Vec::new();
        let mut changes = changes.into_iter().peekable();
        while let Some((path, value)) = changes.next() {
            if changes
                .peek()
                .is_some_and(|(next, _)| next.as_ref() == path.as_ref())
            {
                continue;
            }
            let path = path.as_ref();
            match (self.position(path), value) {
                (Ok(index), Some(value)) => {
                    if let Some((_, old)) = self.slots.get_mut(index) {
                        *old = value;
                    }
                }
                (Ok(index), None) => removed.push(index),
                (Err(_), Some(value)) => added.push((self.store(path), value)),
                (Err(_), None) => {}
            }
        }
        if !removed.is_empty() {
            // `removed` is sorted: walk it along the records.
            let mut removed = removed.into_iter().peekable();
            let mut index = 0;
            self.slots.retain(|_| {
                let keep = removed.next_if_eq(&index).is_none();
                index += 1;
                keep
            });
        }
        if !added.is_empty() {
            // Two sorted runs: the sort merges them in one pass.
            self.slots.extend(added);
            let paths = &self.paths;
            self.slots.sort_by(|(a, _), (b, _)| {
                paths
                    .get(a.clone())
                    .unwrap_or_default()
                    .cmp(paths.get(b.clone()).unwrap_or_default())
            });
        }
        // Last: `added` points into the string as it is.
        self.compact_if_sparse();
    }

    /// Every path and its value, sorted by path.
    pub fn iter(&self) -> Iter<'_, V> {
        Iter {
            paths: &self.paths,
            slots: self.slots.iter(),
        }
    }

    /// Every path, sorted.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.iter().map(|(path, _)| path)
    }

    /// Every value, in path order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.slots.iter().map(|(_, value)| value)
    }

    /// The paths that start with `prefix` (as strings: pass `"dir/"` for what is below `dir`),
    /// sorted.
    pub fn with_prefix(&self, prefix: &str) -> Iter<'_, V> {
        let start = self
            .slots
            .partition_point(|(range, _)| self.path_at(range) < prefix);
        let rest = self.slots.get(start..).unwrap_or_default();
        let end = rest.partition_point(|(range, _)| self.path_at(range).starts_with(prefix));
        Iter {
            paths: &self.paths,
            slots: rest.get(..end).unwrap_or_default().iter(),
        }
    }
}

/// Equal when they hold the same paths with equal values.
impl<V: PartialEq> PartialEq for PathMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V: Eq> Eq for PathMap<V> {}

/// Collects pairs in any order; of equal paths, the last wins (as inserting them one by one
/// into a map would).
impl<P: AsRef<str>, V> FromIterator<(P, V)> for PathMap<V> {
    fn from_iter<I: IntoIterator<Item = (P, V)>>(pairs: I) -> Self {
        let mut pairs: Vec<(P, V)> = pairs.into_iter().collect();
        if !pairs
            .windows(2)
            .all(|pair| pair[0].0.as_ref() < pair[1].0.as_ref())
        {
            // Stable: equal paths keep their order, so the last one is the one to keep.
            pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        }
        let bytes = pairs.iter().map(|(path, _)| path.as_ref().len()).sum();
        let mut map = PathMap::with_capacity(pairs.len(), bytes);
        for (path, value) in pairs {
            let path = path.as_ref();
            match map.slots.last_mut() {
                Some((last, old)) if map.paths.get(last.clone()) == Some(path) => *old = value,
                _ => {
                    let range = map.store(path);
                    map.slots.push((range, value));
                }
            }
        }
        map
    }
}

/// Each path as a `String` of its own, with its value, sorted by path.
impl<V> IntoIterator for PathMap<V> {
    type Item = (String, V);
    type IntoIter = IntoIter<V>;

    fn into_iter(self) -> Self::IntoIter {
        IntoIter {
            paths: self.paths,
            slots: self.slots.into_iter(),
        }
    }
}

impl<'a, V> IntoIterator for &'a PathMap<V> {
    type Item = (&'a str, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<V: fmt::Debug> fmt::Debug for PathMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A JSON object (or any map), path to value.
impl<V: Serialize> Serialize for PathMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for PathMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<V> {
            type Value = PathMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of paths")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                // The length comes from the input: a damaged one must not reserve gigabytes.
                let mut pairs: Vec<(String, V)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(pairs.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Visitor(PhantomData))
    }
}

/// The records of a [`PathMap`], sorted by path.
#[derive(Debug, Clone)]
pub struct Iter<'a, V> {
    paths: &'a str,
    slots: std::slice::Iter<'a, (Range<usize>, V)>,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a str, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let (range, value) = self.slots.next()?;
        Some((self.paths.get(range.clone()).unwrap_or_default(), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.slots.size_hint()
    }
}

impl<V> DoubleEndedIterator for Iter<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let (range, value) = self.slots.next_back()?;
        Some((self.paths.get(range.clone()).unwrap_or_default(), value))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

/// The records of a [`PathMap`] taken apart, sorted by path.
#[derive(Debug)]
pub struct IntoIter<V> {
    paths: String,
    slots: std::vec::IntoIter<(Range<usize>, V)>,
}

impl<V> Iterator for IntoIter<V> {
    type Item = (String, V);

    fn next(&mut self) -> Option<Self::Item> {
        let (range, value) = self.slots.next()?;
        Some((self.paths.get(range).unwrap_or_default().to_owned(), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.slots.size_hint()
    }
}

impl<V> ExactSizeIterator for IntoIter<V> {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn map(pairs: &[(&str, u32)]) -> PathMap<u32> {
        pairs.iter().map(|(p, v)| ((*p).to_owned(), *v)).collect()
    }

    fn pairs(map: &PathMap<u32>) -> Vec<(&str, u32)> {
        map.iter().map(|(p, v)| (p, *v)).collect()
    }

    #[test]
    fn collecting_sorts_and_keeps_the_last_of_equal_paths() {
        let collected = map(&[("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)]);
        assert_eq!(pairs(&collected), [("a", 5), ("b", 3), ("c", 4)]);
        let reference: BTreeMap<&str, u32> = [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)]
            .into_iter()
            .collect();
        assert_eq!(pairs(&collected), reference.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn lookups_inserts_and_removals_act_as_a_btreemap_does() {
        let mut ours = PathMap::new();
        let mut reference = BTreeMap::new();
        // A fixed pseudo-random sequence of operations over a small key space.
        let mut state = 0x2545_f491_u64;
        for _ in 0..2000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = format!("d{}/f{}", (state >> 33) % 5, (state >> 40) % 7);
            let value = (state >> 50) as u32;
            match (state >> 20) % 3 {
                0 => assert_eq!(ours.remove(&key), reference.remove(&key)),
                _ => assert_eq!(
                    ours.insert(&key, value),
                    reference.insert(key.clone(), value)
                ),
            }
            assert_eq!(ours.get(&key), reference.get(&key));
            assert_eq!(ours.contains_key(&key), reference.contains_key(&key));
        }
        assert_eq!(ours.len(), reference.len());
        assert!(
            ours.iter()
                .eq(reference.iter().map(|(k, v)| (k.as_str(), v)))
        );
    }

    #[test]
    fn a_batch_of_changes_merges_as_one_change_at_a_time_would() {
        let base = map(&[("a", 1), ("c", 3), ("e", 5), ("g", 7)]);
        let changes = [
            ("c".to_owned(), None),
            ("b".to_owned(), Some(20)),
            ("h".to_owned(), Some(80)),
            ("a".to_owned(), Some(10)),
            ("b".to_owned(), Some(21)),
            ("0".to_owned(), Some(0)),
            ("x".to_owned(), None),
            ("g".to_owned(), None),
            ("g".to_owned(), Some(70)),
        ];
        let mut one_at_a_time = base.clone();
        for (path, value) in changes.clone() {
            match value {
                Some(value) => {
                    one_at_a_time.insert(&path, value);
                }
                None => {
                    one_at_a_time.remove(&path);
                }
            }
        }
        let mut batched = base;
        batched.apply_changes(changes);
        assert_eq!(batched, one_at_a_time);
        assert_eq!(
            pairs(&batched),
            [
                ("0", 0),
                ("a", 10),
                ("b", 21),
                ("e", 5),
                ("g", 70),
                ("h", 80)
            ]
        );
    }

    #[test]
    fn removed_paths_do_not_pile_up() {
        let mut map = PathMap::new();
        for round in 0..200 {
            let path = format!("projects/p{round}/{}", "x".repeat(100));
            map.insert(&path, round);
            map.apply_changes([
                (path.clone(), None),
                (format!("keep{round:03}"), Some(round)),
            ]);
            assert_eq!(map.get(&path), None);
        }
        assert_eq!(map.len(), 200);
        assert_eq!(map.get("keep123"), Some(&123));
        assert!(
            map.paths.len() < 2 * 200 * 7 + 4096 + 200,
            "{} bytes",
            map.paths.len()
        );
        assert!(
            map.keys()
                .eq((0..200).map(|round| format!("keep{round:03}")))
        );
    }

    #[test]
    fn with_prefix_is_the_range_of_paths_starting_with_it() {
        let map = map(&[
            ("a", 1),
            ("b/c", 2),
            ("b/d/e", 3),
            ("b0", 4),
            ("b/", 5),
            ("c", 6),
        ]);
        let below: Vec<&str> = map.with_prefix("b/").map(|(p, _)| p).collect();
        assert_eq!(below, ["b/", "b/c", "b/d/e"]);
        assert_eq!(map.with_prefix("").count(), 6);
        assert_eq!(map.with_prefix("z").count(), 0);
        assert_eq!(map.with_prefix("b/d/e/").count(), 0);
    }

    #[test]
    fn serde_round_trips_as_a_map() {
        let map = map(&[("b", 2), ("a", 1)]);
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, r#"{"a":1,"b":2}"#);
        let back: PathMap<u32> = serde_json::from_str(r#"{"b":2,"a":1,"b":3}"#).unwrap();
        assert_eq!(pairs(&back), [("a", 1), ("b", 3)]);
    }
}
