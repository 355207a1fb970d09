//! Duplicate suppression: per-symbol sets of applied trade ids and per-source offset watermarks.
//!
//! # Id hashing
//!
//! Ids are stored as the 64-bit xxh3 hash of their bytes (8 bytes instead of the string). A
//! false duplicate needs a new id to collide with one of the ≤ n held ids: probability
//! n / 2^64 per trade, i.e. 3.6e-15 at the default cap of 65,536 ids; at a billion trades a
//! day that is one wrongly dropped trade every ~750 years per symbol. The chance that two
//! held ids collide at all is about n² / 2^65 = 1.2e-10.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Default hard cap on remembered ids per symbol.
pub const DEFAULT_DEDUPE_CAP: usize = 65_536;
/// Default age (event time, back from the symbol's latest event) after which ids are forgotten.
pub const DEFAULT_DEDUPE_WINDOW_NS: i64 = 86_400 * 1_000_000_000;
/// Largest accepted cap (bounds memory at ~400 MiB per symbol).
pub const MAX_DEDUPE_CAP: usize = 1 << 24;

/// Errors of dedupe configuration and state import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DedupeError {
    /// A configuration value is out of range.
    #[error("invalid dedupe configuration: {0}")]
    Config(&'static str),
    /// Imported state violates an invariant.
    #[error("invalid dedupe state: {0}")]
    Invalid(&'static str),
}

/// The 64-bit xxh3 hash under which an id is remembered.
#[inline]
pub fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// Open-addressing set of id hashes: linear probing from bucket-aligned home slots, compared
/// four slots at a time, with backward-shift deletion.
///
/// A purpose-built table instead of `HashSet<u64>`: the keys are already uniform hashes (no
/// rehashing), a slot is 8 bytes (no control bytes), and the engine can prefetch a key's
/// bucket before looking it up, which hides the cache miss that dominated the profile with
/// ids. Lookups compare a whole 4-slot bucket at once (no data-dependent branch per slot),
/// so they usually decide on the first bucket without the mispredictions of slot-by-slot
/// probing. Deletion shifts later members of the cluster back instead of leaving tombstones,
/// so the FIFO churn at the cap never forces rebuilds. Live ids fill at most 1/2 of the slots
/// (the table doubles beyond): a full set of 65,536 ids takes 131,072 slots = 1 MiB. The slot
/// value 0 marks an empty slot, so a computed hash 0 is stored as 1 (merging two of 2^64
/// values is immaterial).
#[derive(Debug, Clone, Default)]
struct IdTable {
    slots: Vec<u64>,
    len: usize,
}

const EMPTY: u64 = 0;
const BUCKET: usize = 4;

impl IdTable {
    #[inline]
    fn key(hash: u64) -> u64 {
        hash.max(1)
    }

    /// First slot of the home bucket of `key` (a multiple of 4).
    #[inline]
    fn home_slot(&self, key: u64) -> usize {
        (key as usize & (self.slots.len() / BUCKET).wrapping_sub(1)) * BUCKET
    }

    /// The bucket where the probe for `hash` starts (for prefetching).
    #[inline]
    fn home(&self, hash: u64) -> Option<&[u64]> {
        if self.slots.is_empty() {
            return None;
        }
        let h = self.home_slot(Self::key(hash));
        self.slots.get(h..h + BUCKET)
    }

    #[inline]
    fn bucket(&self, first: usize) -> [u64; BUCKET] {
        let mut out = [EMPTY; BUCKET];
        if let Some(s) = self.slots.get(first..first + BUCKET) {
            out.copy_from_slice(s);
        }
        out
    }

    /// `Ok(slot of key)` or `Err(first empty slot of its probe)`.
    #[inline]
    fn find(&self, key: u64) -> Result<usize, usize> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut first = self.home_slot(key);
        // Linear probing keeps no empty slot between a key's home and the key, so the first
        // bucket holding an empty slot and not the key ends the probe. Load ≤ 1/2 guarantees
        // such a bucket; the bound only guards against the impossible.
        for _ in 0..self.slots.len() / BUCKET {
            let b = self.bucket(first);
            if let Some(i) = b.iter().position(|&x| x == key) {
                return Ok(first + i);
            }
            if let Some(i) = b.iter().position(|&x| x == EMPTY) {
                return Err(first + i);
            }
            first = (first + BUCKET) & mask;
        }
        Err(usize::MAX)
    }

    #[inline]
    fn contains(&self, hash: u64) -> bool {
        !self.slots.is_empty() && self.find(Self::key(hash)).is_ok()
    }

    /// Inserts a hash the caller knows to be absent.
    #[inline]
    fn insert_absent(&mut self, hash: u64) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        if let Err(i) = self.find(Self::key(hash)) {
            if let Some(slot) = self.slots.get_mut(i) {
                *slot = Self::key(hash);
                self.len += 1;
            }
        }
    }

    /// Inserts; returns false if already present.
    fn insert(&mut self, hash: u64) -> bool {
        if self.contains(hash) {
            return false;
        }
        self.insert_absent(hash);
        true
    }

    fn remove(&mut self, hash: u64) {
        if self.slots.is_empty() {
            return;
        }
        let Ok(mut hole) = self.find(Self::key(hash)) else {
            return;
        };
        let mask = self.slots.len() - 1;
        // Backward-shift deletion: move later members of the cluster into the hole unless
        // their home lies cyclically in (hole, their slot], where they must stay.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let k = self.slots.get(j).copied().unwrap_or(EMPTY);
            if k == EMPTY {
                break;
            }
            let home = self.home_slot(k);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                if let Some(h) = self.slots.get_mut(hole) {
                    *h = k;
                }
                hole = j;
            }
        }
        if let Some(h) = self.slots.get_mut(hole) {
            *h = EMPTY;
        }
        self.len -= 1;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        self.len = 0;
        for k in old.into_iter().filter(|&k| k != EMPTY) {
            self.insert_absent(k);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u64>()
    }
}

/// One remembered id: its hash and the event time of its trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct IdEntry {
    time_ns: i64,
    hash: u64,
}

/// The ids of the trades applied to one symbol, bounded by age and by count.
///
/// Ids are forgotten first-in first-out: when older (in event time) than the window behind
/// the symbol's latest event, and when more than `cap` are held (counted in
/// [`IdDedupe::evicted_by_cap`], since a redelivered trade would then be applied twice).
#[derive(Debug, Clone)]
pub struct IdDedupe {
    cap: usize,
    window_ns: i64,
    set: IdTable,
    fifo: VecDeque<IdEntry>,
    evicted_by_cap: u64,
}

impl PartialEq for IdDedupe {
    fn eq(&self, other: &Self) -> bool {
        // The set is an index of the FIFO.
        self.cap == other.cap
            && self.window_ns == other.window_ns
            && self.fifo == other.fifo
            && self.evicted_by_cap == other.evicted_by_cap
    }
}

impl IdDedupe {
    /// Creates an empty id set.
    ///
    /// # Errors
    /// [`DedupeError::Config`] when `cap` is 0 or above [`MAX_DEDUPE_CAP`], or `window_ns` ≤ 0.
    pub fn new(cap: usize, window_ns: i64) -> Result<IdDedupe, DedupeError> {
        if !(1..=MAX_DEDUPE_CAP).contains(&cap) {
            return Err(DedupeError::Config("cap must be between 1 and 16,777,216"));
        }
        if window_ns <= 0 {
            return Err(DedupeError::Config("window must be > 0"));
        }
        Ok(IdDedupe {
            cap,
            window_ns,
            set: IdTable::default(),
            fifo: VecDeque::new(),
            evicted_by_cap: 0,
        })
    }

    /// Whether an id with this hash was applied (and is still remembered).
    #[inline]
    pub fn contains(&self, hash: u64) -> bool {
        self.set.contains(hash)
    }

    /// Remembers an applied id; returns false if it was already remembered.
    ///
    /// `latest_ns` is the symbol's latest event time, the reference for age eviction. Room is
    /// made before inserting so that the table never grows past the cap.
    #[inline]
    pub fn insert(&mut self, hash: u64, time_ns: i64, latest_ns: i64) -> bool {
        if self.set.contains(hash) {
            return false;
        }
        let horizon = latest_ns.saturating_sub(self.window_ns);
        while let Some(front) = self.fifo.front() {
            let aged = front.time_ns < horizon;
            if !aged && self.fifo.len() < self.cap {
                break;
            }
            if !aged {
                self.evicted_by_cap = self.evicted_by_cap.saturating_add(1);
            }
            let old = front.hash;
            self.fifo.pop_front();
            self.set.remove(old);
        }
        self.set.insert_absent(hash);
        self.fifo.push_back(IdEntry { time_ns, hash });
        true
    }

    /// Number of remembered ids.
    pub fn len(&self) -> usize {
        self.fifo.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.fifo.is_empty()
    }

    /// Ids forgotten because the cap was reached (while still inside the age window).
    pub fn evicted_by_cap(&self) -> u64 {
        self.evicted_by_cap
    }

    /// The cap on remembered ids.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Heap bytes held (hash table and FIFO): about 32 bytes per id at the cap (16 in the
    /// table at half load, 16 in the FIFO), i.e. 2 MiB per symbol at the default cap.
    pub fn memory_bytes(&self) -> usize {
        self.set.heap_bytes() + self.fifo.capacity() * std::mem::size_of::<IdEntry>()
    }

    /// The bucket of the id that the `ahead`-th next insertion will evict when the set is at
    /// its cap, for the engine to prefetch (removing it is otherwise a cache miss per trade).
    #[inline]
    pub(crate) fn victim_bucket(&self, ahead: usize) -> Option<&[u64]> {
        if self.fifo.len() < self.cap {
            return None;
        }
        self.set.home(self.fifo.get(ahead)?.hash)
    }

    /// The table bucket where a lookup of `hash` starts, for the engine to prefetch.
    #[inline]
    pub(crate) fn probe_start(&self, hash: u64) -> Option<&[u64]> {
        self.set.home(hash)
    }

    /// Union with the ids of another state of the same symbol.
    ///
    /// The result is the same in either order: entries are ordered by (time, hash) and the
    /// oldest beyond the cap are dropped (counted as cap evictions).
    pub fn merge(&mut self, other: &IdDedupe) {
        let mut all: Vec<IdEntry> = self.fifo.iter().chain(&other.fifo).copied().collect();
        all.sort_unstable();
        // The same id may have been applied on both sides with different times: keep the first.
        let mut seen = IdTable::default();
        all.retain(|e| seen.insert(e.hash));
        let excess = all.len().saturating_sub(self.cap);
        self.evicted_by_cap = self
            .evicted_by_cap
            .saturating_add(other.evicted_by_cap)
            .saturating_add(excess as u64);
        self.fifo = all.into_iter().skip(excess).collect();
        self.set = IdTable::default();
        for e in &self.fifo {
            self.set.insert(e.hash);
        }
    }

    pub(crate) fn to_parts(&self) -> IdDedupePartsRef<'_> {
        IdDedupePartsRef {
            cap: self.cap as u64,
            window_ns: self.window_ns,
            evicted_by_cap: self.evicted_by_cap,
            entries: &self.fifo,
        }
    }

    pub(crate) fn from_parts(parts: IdDedupeParts) -> Result<IdDedupe, DedupeError> {
        let cap =
            usize::try_from(parts.cap).map_err(|_| DedupeError::Invalid("cap out of range"))?;
        let mut d = IdDedupe::new(cap, parts.window_ns)
            .map_err(|_| DedupeError::Invalid("configuration out of range"))?;
        if parts.entries.len() > cap {
            return Err(DedupeError::Invalid("more ids than the cap"));
        }
        d.fifo = parts.entries.into();
        for e in &d.fifo {
            d.set.insert(e.hash);
        }
        if d.set.len != d.fifo.len() {
            return Err(DedupeError::Invalid("repeated id"));
        }
        d.evicted_by_cap = parts.evicted_by_cap;
        Ok(d)
    }
}

/// Borrowed export form of an [`IdDedupe`]; field order must match [`IdDedupeParts`].
#[derive(Serialize)]
pub(crate) struct IdDedupePartsRef<'a> {
    cap: u64,
    window_ns: i64,
    evicted_by_cap: u64,
    entries: &'a VecDeque<IdEntry>,
}

/// Owned import form of an [`IdDedupe`] (the set is rebuilt from the FIFO).
#[derive(Deserialize)]
pub(crate) struct IdDedupeParts {
    cap: u64,
    window_ns: i64,
    evicted_by_cap: u64,
    entries: Vec<IdEntry>,
}

/// Most disjoint ranges kept per source. Beyond it the ranges with the smallest gaps are joined
/// until [`RANGES_AFTER_JOIN`] remain (counted in [`Watermarks::joined_gaps`]): a joined gap is
/// treated as applied, so a record inside it that was never applied would be skipped. A gap
/// opens each time a symbol is absent from a batch of its source, and then holds only other
/// symbols' records; the gap a replay must fill (a state rebuilt after a node loss) is larger,
/// so it is the last to go. Joining in bulk keeps a mark O(1) amortized.
pub const MAX_RANGES_PER_SOURCE: usize = 64;
/// Ranges left per source after joining the smallest gaps.
pub const RANGES_AFTER_JOIN: usize = 48;

/// Sorted, disjoint `[lo, hi)` ranges of applied sequence numbers of one source.
pub type AppliedRanges = Vec<(u64, u64)>;

/// Per-source applied-offset ranges of one symbol.
///
/// Each source (a Kafka partition, a replayed file) maps to sorted, disjoint `[lo, hi)` ranges of
/// sequence numbers already applied. A trade (or order) whose `arrival.seq` lies in a range at the
/// start of a batch is a redelivery. After the batch, `[min seq, max seq + 1)` of the batch's rows
/// (all symbols') is added for every symbol with rows: a batch (or a chunk of one, or the part of
/// it one owner gets) covers a contiguous run of its source, so no record of the symbol inside
/// that run is left out, and the several trades of one record all apply. Taking the batch's span
/// rather than the symbol's own keeps consecutive batches in one range.
///
/// Ranges rather than one watermark let a state rebuilt after a node loss take the log's older
/// records on replay even though it already applied newer ones; usually one range per source.
/// A symbol sees few sources, so a sorted vector beats a hash map.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Watermarks {
    sources: Vec<(Box<str>, AppliedRanges)>,
    joined_gaps: u64,
    /// The last source marked, beside the state rather than in the heap: see [`SourceHint`].
    #[serde(skip)]
    hint: Option<SourceHint>,
}

/// The source a symbol's batches come from, by hash, with its position in `sources` and its
/// highest applied seq. With it, the engine learns that none of a batch's rows can be a
/// redelivery, and marks the batch, without reading the source name or the ranges (three cache
/// misses per symbol and batch otherwise). Rebuilt on the next mark after any other change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SourceHint {
    hash: u64,
    index: usize,
    /// One past the highest applied seq of that source.
    next_seq: u64,
}

impl PartialEq for Watermarks {
    fn eq(&self, other: &Watermarks) -> bool {
        self.sources == other.sources && self.joined_gaps == other.joined_gaps
    }
}

impl Eq for Watermarks {}

/// The hash a [`Watermarks`] hint knows a source by.
pub fn source_hash(source: &str) -> u64 {
    id_hash(source)
}

impl Watermarks {
    fn find(&self, source: &str) -> Result<usize, usize> {
        self.sources.binary_search_by(|(s, _)| (**s).cmp(source))
    }

    /// The applied ranges of `source`, sorted (empty when unseen).
    #[inline]
    pub fn ranges(&self, source: &str) -> &[(u64, u64)] {
        match self.find(source) {
            Ok(i) => self.sources.get(i).map_or(&[], |(_, r)| r.as_slice()),
            Err(_) => &[],
        }
    }

    /// One past the highest applied seq of `source` (0 when unseen).
    #[inline]
    pub fn get(&self, source: &str) -> u64 {
        self.ranges(source).last().map_or(0, |&(_, hi)| hi)
    }

    /// Whether `seq` of `source` was applied.
    #[inline]
    pub fn covers(&self, source: &str, seq: u64) -> bool {
        covered(self.ranges(source), seq)
    }

    /// Ranges joined because a source exceeded [`MAX_RANGES_PER_SOURCE`].
    pub fn joined_gaps(&self) -> u64 {
        self.joined_gaps
    }

    /// One past the highest applied seq of the source hashing to `hash`, when it is the source
    /// last marked (without touching the heap); `None` when unknown.
    #[inline]
    pub fn next_seq_hint(&self, hash: u64) -> Option<u64> {
        self.hint.filter(|h| h.hash == hash).map(|h| h.next_seq)
    }

    /// The last range of the hinted source, as a slice (empty when there is no hint): what the
    /// next mark of that source reads.
    pub fn hinted_tail(&self) -> &[(u64, u64)] {
        self.hint
            .and_then(|h| self.sources.get(h.index))
            .and_then(|(_, r)| r.len().checked_sub(1).and_then(|i| r.get(i..)))
            .unwrap_or(&[])
    }

    /// Marks `[lo, hi)` of `source` as applied.
    pub fn mark(&mut self, source: &str, lo: u64, hi: u64) {
        self.mark_hashed(source, source_hash(source), lo, hi);
    }

    /// [`Watermarks::mark`] with the source's [`source_hash`]. A mark that extends or follows
    /// the last range of the hinted source reads only that range.
    pub fn mark_hashed(&mut self, source: &str, hash: u64, lo: u64, hi: u64) {
        if lo >= hi {
            return;
        }
        let hinted = self.hint.filter(|h| h.hash == hash).map(|h| h.index);
        let i = match hinted {
            // Trusts the 64-bit hash, as the id set does for trade ids.
            Some(i) if i < self.sources.len() => i,
            _ => match self.find(source) {
                Ok(i) => i,
                Err(i) => {
                    self.sources.insert(i, (source.into(), Vec::new()));
                    i
                }
            },
        };
        let Some((_, ranges)) = self.sources.get_mut(i) else {
            return;
        };
        let joined = mark_ranges(ranges, lo, hi);
        self.joined_gaps += joined;
        self.hint = ranges.last().map(|&(_, next_seq)| SourceHint {
            hash,
            index: i,
            next_seq,
        });
    }

    /// Marks everything below `next_seq` of `source` as applied.
    pub fn advance(&mut self, source: &str, next_seq: u64) {
        self.mark(source, 0, next_seq);
    }

    /// Union with another symbol state's ranges.
    pub fn merge(&mut self, other: &Watermarks) {
        for (s, ranges) in &other.sources {
            for &(lo, hi) in ranges {
                self.mark(s, lo, hi);
            }
        }
        self.joined_gaps += other.joined_gaps;
    }

    /// Whether every range of `other` lies within a range of `self` (same source).
    pub fn contains(&self, other: &Watermarks) -> bool {
        other.sources.iter().all(|(source, ranges)| {
            let mine = self.ranges(source);
            ranges.iter().all(|&(lo, hi)| {
                let k = mine.partition_point(|&(l, _)| l <= lo);
                k > 0 && mine.get(k - 1).is_some_and(|&(_, h)| hi <= h)
            })
        })
    }

    /// `(source, one past the highest applied seq)` pairs sorted by source.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.sources
            .iter()
            .map(|(s, r)| (&**s, r.last().map_or(0, |&(_, hi)| hi)))
    }

    /// Number of sources.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether no source was seen.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Checks sortedness, disjointness and bounds (imported state).
    pub(crate) fn is_valid(&self) -> bool {
        self.sources.windows(2).all(|w| w[0].0 < w[1].0)
            && self.sources.iter().all(|(_, r)| {
                r.len() <= MAX_RANGES_PER_SOURCE
                    && r.iter().all(|&(l, h)| l < h)
                    && r.windows(2).all(|w| w[0].1 < w[1].0)
            })
    }
}

/// Adds `[lo, hi)` to sorted disjoint ranges; returns the gaps joined to stay within
/// [`MAX_RANGES_PER_SOURCE`].
fn mark_ranges(ranges: &mut AppliedRanges, lo: u64, hi: u64) -> u64 {
    // The usual case: the mark continues or follows the last range.
    match ranges.last_mut() {
        Some(last) if last.0 <= lo && lo <= last.1 => {
            last.1 = last.1.max(hi);
            return 0;
        }
        Some(last) if last.1 < lo => {
            ranges.push((lo, hi));
            return join_smallest_gaps(ranges);
        }
        None => {
            ranges.push((lo, hi));
            return 0;
        }
        Some(_) => {}
    }
    // Ranges strictly before (ending before lo) and strictly after (starting after hi) stay;
    // everything touching [lo, hi) is absorbed into it.
    let start = ranges.partition_point(|&(_, h)| h < lo);
    let end = ranges.partition_point(|&(l, _)| l <= hi);
    let (mut nlo, mut nhi) = (lo, hi);
    if let Some(slice) = ranges.get(start..end) {
        for &(l, h) in slice {
            nlo = nlo.min(l);
            nhi = nhi.max(h);
        }
    }
    ranges.splice(start..end.max(start), [(nlo, nhi)]);
    join_smallest_gaps(ranges)
}

/// Beyond [`MAX_RANGES_PER_SOURCE`] ranges, joins the smallest gaps (the earliest first among
/// equal ones) until [`RANGES_AFTER_JOIN`] remain; returns how many were joined.
fn join_smallest_gaps(ranges: &mut AppliedRanges) -> u64 {
    if ranges.len() <= MAX_RANGES_PER_SOURCE {
        return 0;
    }
    let excess = ranges.len() - RANGES_AFTER_JOIN;
    // Gap k lies between ranges k - 1 and k. Joining one gap leaves the others' sizes as they
    // are, so the `excess` smallest can be chosen at once.
    let mut gaps: Vec<(u64, usize)> = (1..ranges.len())
        .map(|k| (ranges[k].0.saturating_sub(ranges[k - 1].1), k))
        .collect();
    gaps.select_nth_unstable(excess - 1);
    let mut join = vec![false; ranges.len()];
    for &(_, k) in gaps.iter().take(excess) {
        if let Some(j) = join.get_mut(k) {
            *j = true;
        }
    }
    let mut kept: AppliedRanges = Vec::with_capacity(MAX_RANGES_PER_SOURCE + 1);
    for (&(lo, hi), &joined) in ranges.iter().zip(&join) {
        match kept.last_mut() {
            Some(last) if joined => last.1 = hi,
            _ => kept.push((lo, hi)),
        }
    }
    *ranges = kept;
    excess as u64
}

/// Whether `seq` lies in one of the sorted ranges.
#[inline]
pub fn covered(ranges: &[(u64, u64)], seq: u64) -> bool {
    match ranges {
        [] => false,
        [(lo, hi)] => *lo <= seq && seq < *hi,
        _ => {
            let k = ranges.partition_point(|&(l, _)| l <= seq);
            k > 0 && ranges.get(k - 1).is_some_and(|&(_, h)| seq < h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_set_detects_duplicates_and_evicts_by_cap_and_age() {
        let mut d = IdDedupe::new(3, 100).unwrap();
        assert!(d.insert(id_hash("a"), 10, 10));
        assert!(!d.insert(id_hash("a"), 11, 11));
        assert!(d.contains(id_hash("a")));
        d.insert(id_hash("b"), 12, 12);
        d.insert(id_hash("c"), 13, 13);
        d.insert(id_hash("d"), 14, 14);
        assert_eq!(d.len(), 3);
        assert!(!d.contains(id_hash("a")));
        assert_eq!(d.evicted_by_cap(), 1);
        // Age: everything older than 200 − 100 goes, without counting as cap eviction.
        d.insert(id_hash("e"), 200, 200);
        assert_eq!(d.len(), 1);
        assert!(d.contains(id_hash("e")));
        assert_eq!(d.evicted_by_cap(), 1);
    }

    #[test]
    fn id_merge_is_a_union_in_either_order() {
        let mut a = IdDedupe::new(10, 1_000).unwrap();
        let mut b = IdDedupe::new(10, 1_000).unwrap();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            a.insert(id_hash(id), i as i64, 5);
        }
        for (i, id) in ["c", "d"].iter().enumerate() {
            b.insert(id_hash(id), 10 + i as i64, 11);
        }
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab.fifo, ba.fifo);
        assert_eq!(ab.len(), 4);
        for id in ["a", "b", "c", "d"] {
            assert!(ab.contains(id_hash(id)));
        }
    }

    #[test]
    fn table_insert_remove_matches_a_model() {
        let mut t = IdTable::default();
        let mut model = std::collections::HashSet::new();
        let mut x = 0x1234_5678_9abc_def1u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct values in a small table: long clusters and wrap-around.
            let key = (x % 512) | ((x % 3) << 60);
            if step % 3 == 0 {
                t.remove(key);
                model.remove(&IdTable::key(key));
            } else {
                assert_eq!(t.insert(key), model.insert(IdTable::key(key)));
            }
            assert_eq!(t.len, model.len());
        }
        for k in 0..1024u64 {
            assert_eq!(
                t.contains(k | ((k % 3) << 60)),
                model.contains(&IdTable::key(k | ((k % 3) << 60)))
            );
        }
        assert!(t.contains(0) == t.contains(1), "0 and 1 share a key");
    }

    #[test]
    fn memory_is_bounded_at_the_cap() {
        let mut d = IdDedupe::new(DEFAULT_DEDUPE_CAP, DEFAULT_DEDUPE_WINDOW_NS).unwrap();
        for i in 0..100_000 {
            assert!(d.insert(id_hash(&format!("E{i}")), i, i));
        }
        assert_eq!(d.len(), DEFAULT_DEDUPE_CAP);
        assert_eq!(d.evicted_by_cap(), 100_000 - DEFAULT_DEDUPE_CAP as u64);
        assert!(d.contains(id_hash("E99999")) && !d.contains(id_hash("E0")));
        assert_eq!(d.memory_bytes(), 2 << 20);
    }

    #[test]
    fn config_is_validated() {
        assert!(IdDedupe::new(0, 1).is_err());
        assert!(IdDedupe::new(1, 0).is_err());
        assert!(IdDedupe::new(MAX_DEDUPE_CAP + 1, 1).is_err());
    }

    #[test]
    fn watermarks_only_rise_and_merge_by_max() {
        let mut w = Watermarks::default();
        assert_eq!(w.get("trades/3"), 0);
        w.advance("trades/3", 10);
        w.advance("trades/3", 5);
        w.advance("orders/0", 7);
        assert_eq!(w.get("trades/3"), 10);
        let mut other = Watermarks::default();
        other.advance("trades/3", 12);
        other.advance("trades/9", 1);
        w.merge(&other);
        assert_eq!(
            w.iter().collect::<Vec<_>>(),
            vec![("orders/0", 7), ("trades/3", 12), ("trades/9", 1)]
        );
        assert!(w.is_valid());
    }

    #[test]
    fn applied_ranges_merge_touching_runs_and_let_older_offsets_through() {
        let mut w = Watermarks::default();
        w.mark("p", 100, 200);
        assert!(w.covers("p", 150) && !w.covers("p", 99) && !w.covers("p", 200));
        // A replay of older records (a state rebuilt after a node loss) is applied, then joins.
        assert!(!w.covers("p", 0));
        w.mark("p", 0, 50);
        w.mark("p", 50, 100);
        assert_eq!(w.ranges("p"), &[(0, 200)]);
        w.mark("p", 300, 310);
        assert_eq!(w.ranges("p"), &[(0, 200), (300, 310)]);
        assert!(!w.covers("p", 250) && w.covers("p", 305));
        assert_eq!(w.get("p"), 310);
        assert!(w.is_valid());
    }

    #[test]
    fn applied_ranges_are_bounded_per_source() {
        let mut w = Watermarks::default();
        // A state rebuilt from a checkpoint at 100 has not yet replayed [100, 1000) when live
        // batches arrive, the symbol absent from every other one.
        w.mark("p", 0, 100);
        let marks = 3 * MAX_RANGES_PER_SOURCE as u64;
        for k in 0..marks {
            w.mark("p", 1_000 + k * 10, 1_000 + k * 10 + 9);
        }
        let ranges = w.ranges("p");
        assert!(ranges.len() <= MAX_RANGES_PER_SOURCE && ranges.len() >= RANGES_AFTER_JOIN);
        assert_eq!(w.joined_gaps(), marks + 1 - ranges.len() as u64);
        assert!(
            !w.covers("p", 100) && !w.covers("p", 999),
            "the replay's gap stays"
        );
        assert!(w.covers("p", 99) && w.covers("p", 1_000 + (marks - 1) * 10));
        assert!(w.is_valid());
    }

    proptest::proptest! {
        #[test]
        fn applied_ranges_equal_a_set_of_marked_seqs(marks in proptest::collection::vec((0u64..200, 1u64..20, proptest::bool::ANY), 0..40)) {
            // Two sources, interleaved: the hint must follow the source it was set for.
            let mut w = Watermarks::default();
            let mut sets = [std::collections::BTreeSet::new(), std::collections::BTreeSet::new()];
            for &(lo, len, second) in &marks {
                w.mark(if second { "t" } else { "s" }, lo, lo + len);
                sets[usize::from(second)].extend(lo..lo + len);
            }
            proptest::prop_assert!(w.is_valid());
            for seq in 0..230 {
                proptest::prop_assert_eq!(w.covers("s", seq), sets[0].contains(&seq));
                proptest::prop_assert_eq!(w.covers("t", seq), sets[1].contains(&seq));
            }
            let marks: Vec<(u64, u64)> = marks.iter().filter(|m| !m.2).map(|m| (m.0, m.1)).collect();
            let mut other = Watermarks::default();
            other.mark("s", 500, 510);
            let mut m = w.clone();
            m.merge(&other);
            proptest::prop_assert!(m.covers("s", 505) && m.covers("s", marks.first().map_or(505, |m| m.0)));
        }
    }
}
