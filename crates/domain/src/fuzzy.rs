//! Fuzzy company-name matching over an in-memory trigram index.
//!
//! Names are indexed in their folded form (see `names`). A search never
//! scans every name: one deleted, inserted or transposed character leaves
//! a name without at most four of the query's trigrams, so a search counts
//! occurrences over the posting lists of the query's rarest trigrams (up to
//! eight: the longer lists cost most to walk and filter least) and keeps
//! the names found in all but four of them. Candidates are then
//! scored (see [`similarity`]; 1.0 = identical) and kept above a threshold.

use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// Per-thread scratch counters of a search, one per slot, all zero between searches.
    static COUNTS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One match: the indexed key, its folded name and the similarity score.
#[derive(Debug, Clone, PartialEq)]
pub struct NameMatch {
    pub key: String,
    pub name: String,
    pub score: f64,
}

#[derive(Debug, Default)]
pub struct NameIndex {
    /// Slot → (key, folded name); `None` once removed.
    slots: Vec<Option<(String, String)>>,
    /// Slot → name length (saturating), to reject candidates without
    /// touching their names.
    lens: Vec<u8>,
    slot_of: HashMap<String, u32>,
    postings: HashMap<u32, Vec<u32>>,
    dead: usize,
}

fn trigrams(name: &str) -> Vec<u32> {
    let padded: Vec<u8> = [b' ', b' '].into_iter().chain(name.bytes()).chain([b' ']).collect();
    let mut grams: Vec<u32> = padded.windows(3).map(|w| (u32::from(w[0]) << 16) | (u32::from(w[1]) << 8) | u32::from(w[2])).collect();
    grams.sort_unstable();
    grams.dedup();
    grams
}

/// Similarity of two folded names, 0–1: the larger of Jaro-Winkler (kind
/// to short names and shared beginnings) and normalised Damerau-Levenshtein
/// (kind to a slip near the start of a long name, which Jaro counts as
/// transpositions, and fair in ranking names that share a beginning).
pub fn similarity(a: &str, b: &str) -> f64 {
    strsim::jaro_winkler(a, b).max(strsim::normalized_damerau_levenshtein(a, b))
}

impl NameIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Live names in the index.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Adds or replaces the name under `key`. `folded` must be a folded name.
    pub fn insert(&mut self, key: &str, folded: &str) {
        self.remove(key);
        if folded.is_empty() {
            return;
        }
        let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        for g in trigrams(folded) {
            self.postings.entry(g).or_default().push(slot);
        }
        self.slots.push(Some((key.to_owned(), folded.to_owned())));
        self.lens.push(u8::try_from(folded.len()).unwrap_or(u8::MAX));
        self.slot_of.insert(key.to_owned(), slot);
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(slot) = self.slot_of.remove(key) {
            if let Some(s) = self.slots.get_mut(slot as usize) {
                *s = None;
            }
            self.dead += 1;
            if self.dead > 1024 && self.dead > self.slot_of.len() {
                self.compact();
            }
        }
    }

    /// Rebuilds the postings without removed names.
    fn compact(&mut self) {
        let live: Vec<(String, String)> = self.slots.drain(..).flatten().collect();
        *self = Self::default();
        for (k, n) in live {
            self.insert(&k, &n);
        }
    }

    /// Names whose similarity to the folded `query` is at least `threshold`,
    /// best first, at most `limit`.
    pub fn search(&self, query: &str, threshold: f64, limit: usize) -> Vec<NameMatch> {
        if query.is_empty() || self.slot_of.is_empty() {
            return Vec::new();
        }
        let mut grams: Vec<(usize, u32)> = trigrams(query).into_iter().map(|g| (self.postings.get(&g).map_or(0, Vec::len), g)).collect();
        grams.sort_unstable();
        // A name one slip away (a deleted, inserted or transposed character)
        // lacks at most four of the query's trigrams. Count, for every name,
        // in how many of the query's rarest lists it appears (a counter per
        // slot, touched only through the lists), and keep the names that
        // appear in all but four of them.
        const ALLOWED_MISSES: usize = 4;
        // Eight lists: a name that shared all but four of the twelve rarest
        // shares all but four of the eight rarest too, so every candidate
        // of twelve is still scored (a better-scoring newcomer may rank
        // first); the four longest lists were most of the work.
        let consult = grams.len().min(8);
        let must_share = consult.saturating_sub(ALLOWED_MISSES).max(1);
        let qlen = query.len();
        let max_diff = 2 + qlen / 8;
        let mut found = Vec::new();
        COUNTS.with_borrow_mut(|counts| {
            if counts.len() < self.slots.len() {
                counts.resize(self.slots.len(), 0);
            }
            let mut touched: Vec<u32> = Vec::new();
            for (_, g) in &grams[..consult] {
                for &slot in self.postings.get(g).map(Vec::as_slice).unwrap_or_default() {
                    let c = &mut counts[slot as usize];
                    if *c == 0 {
                        touched.push(slot);
                    }
                    *c = c.saturating_add(1);
                }
            }
            for &slot in &touched {
                let shared = usize::from(counts[slot as usize]);
                counts[slot as usize] = 0;
                if shared < must_share {
                    continue;
                }
                let len = usize::from(self.lens.get(slot as usize).copied().unwrap_or(0));
                if len.abs_diff(qlen) > max_diff && len < usize::from(u8::MAX) {
                    continue;
                }
                let Some(Some((key, name))) = self.slots.get(slot as usize) else { continue };
                let score = similarity(query, name);
                if score >= threshold {
                    found.push(NameMatch { key: key.clone(), name: name.clone(), score });
                }
            }
        });
        found.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
        found.truncate(limit);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::fold_company_name;

    fn index(names: &[(&str, &str)]) -> NameIndex {
        let mut i = NameIndex::new();
        for (k, n) in names {
            i.insert(k, &fold_company_name(n));
        }
        i
    }

    #[test]
    fn one_character_slips_still_find_the_company() {
        let i =
            index(&[("a", "Globex Corporation"), ("b", "Initech"), ("c", "Acme Widgets"), ("d", "Northwind Traders"), ("e", "Umbrella")]);
        for (query, want) in [
            ("Glbex", "a"),
            ("Golbex Inc", "a"),
            ("The Globex LLC", "a"),
            ("Intiech", "b"),
            ("ACME widgts", "c"),
            ("Northwnid Traders", "d"),
            ("mbrella", "e"),
        ] {
            let hits = i.search(&fold_company_name(query), 0.9, 3);
            assert_eq!(hits.first().map(|m| m.key.as_str()), Some(want), "{query}: {hits:?}");
        }
    }

    #[test]
    fn different_companies_do_not_match() {
        let i = index(&[("a", "Globex Corporation"), ("b", "Initech")]);
        assert!(i.search(&fold_company_name("Soylent"), 0.9, 3).is_empty());
        assert!(i.search(&fold_company_name("Initrode Global"), 0.9, 3).is_empty());
    }

    #[test]
    fn removed_and_replaced_names_are_not_found() {
        let mut i = index(&[("a", "Globex"), ("b", "Initech")]);
        i.remove("a");
        assert!(i.search("globex", 0.9, 3).is_empty());
        i.insert("b", "hooli");
        assert!(i.search("initech", 0.9, 3).is_empty());
        assert_eq!(i.search("hooli", 0.9, 3)[0].score, 1.0);
        assert_eq!(i.len(), 1);
        for n in 0..3000 {
            i.insert(&format!("k{n}"), &format!("company {n}"));
            i.remove(&format!("k{n}"));
        }
        assert_eq!(i.len(), 1, "compaction keeps the live names");
        assert_eq!(i.search("hooli", 0.9, 3).len(), 1);
    }
}
