//! A bar series' storage: older bars in a ring buffer, the newest bar inline.

use super::bar::Bar;
use serde::{Serialize, Serializer};
use std::collections::VecDeque;

/// Bars sorted by start; logically `older ++ [newest]`.
///
/// Nearly every trade updates the newest (forming) bar, so keeping it inline in the symbol's
/// state makes that update a fixed-offset access instead of a ring-buffer index computation
/// and a pointer chase to another allocation.
#[derive(Debug, Clone, Default)]
pub(super) struct BarSeq {
    older: VecDeque<Bar>,
    /// `None` only when the sequence is empty.
    newest: Option<Bar>,
    /// Interval number of the oldest bar (meaningless when empty). Retention checks it on
    /// every clock advance; reading the oldest bar itself would be a cache miss each time.
    front_index: i32,
}

impl BarSeq {
    pub fn len(&self) -> usize {
        self.older.len() + usize::from(self.newest.is_some())
    }

    pub fn get(&self, i: usize) -> Option<&Bar> {
        match i.cmp(&self.older.len()) {
            std::cmp::Ordering::Less => self.older.get(i),
            std::cmp::Ordering::Equal => self.newest.as_ref(),
            std::cmp::Ordering::Greater => None,
        }
    }

    pub fn get_mut(&mut self, i: usize) -> Option<&mut Bar> {
        match i.cmp(&self.older.len()) {
            std::cmp::Ordering::Less => self.older.get_mut(i),
            std::cmp::Ordering::Equal => self.newest.as_mut(),
            std::cmp::Ordering::Greater => None,
        }
    }

    #[inline]
    pub fn back_mut(&mut self) -> Option<&mut Bar> {
        self.newest.as_mut()
    }

    pub fn front(&self) -> Option<&Bar> {
        self.older.front().or(self.newest.as_ref())
    }

    /// Interval number of the oldest bar, without touching it.
    #[inline]
    pub fn front_index(&self) -> Option<i32> {
        (self.newest.is_some()).then_some(self.front_index)
    }

    pub fn pop_front(&mut self) -> Option<Bar> {
        let bar = self.older.pop_front().or_else(|| self.newest.take());
        self.refresh_front();
        bar
    }

    fn refresh_front(&mut self) {
        if let Some(b) = self.front() {
            self.front_index = b.index();
        }
    }

    /// Inserts at `pos` (≤ len), keeping the newest bar inline. `max_older` bounds the
    /// buffer's growth so that a full series carries no power-of-two slack.
    pub fn insert(&mut self, pos: usize, bar: Bar, max_older: usize) {
        if self.older.len() == self.older.capacity() {
            let len = self.older.len();
            let target = (len * 2).max(8).min(max_older.max(len + 1));
            self.older.reserve_exact(target - len);
        }
        if pos == 0 || self.newest.is_none() {
            self.front_index = bar.index();
        }
        if pos >= self.len() {
            if let Some(prev) = self.newest.replace(bar) {
                self.older.push_back(prev);
            }
        } else {
            self.older.insert(pos, bar);
        }
    }

    /// Like `VecDeque::binary_search_by_key` over the whole sequence.
    pub fn binary_search_index(&self, index: i32) -> Result<usize, usize> {
        if let Some(n) = &self.newest {
            if n.index() == index {
                return Ok(self.older.len());
            }
            if n.index() < index {
                return Err(self.len());
            }
        }
        self.older.binary_search_by_key(&index, Bar::index)
    }

    pub fn partition_point(&self, pred: impl Fn(&Bar) -> bool) -> usize {
        let p = self.older.partition_point(&pred);
        if p == self.older.len() && self.newest.as_ref().is_some_and(pred) {
            p + 1
        } else {
            p
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Bar> + DoubleEndedIterator + '_ {
        ExactChain {
            inner: self.older.iter().chain(self.newest.iter()),
            len: self.len(),
        }
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Bar> + '_ {
        self.older.iter_mut().chain(self.newest.iter_mut())
    }

    /// Heap bytes held (the newest bar lives in the owner).
    pub fn heap_bytes(&self) -> usize {
        self.older.capacity() * std::mem::size_of::<Bar>()
    }

    pub fn from_sorted(mut bars: VecDeque<Bar>) -> BarSeq {
        let newest = bars.pop_back();
        bars.shrink_to_fit();
        let mut seq = BarSeq {
            older: bars,
            newest,
            front_index: 0,
        };
        seq.refresh_front();
        seq
    }
}

/// `Chain` is not `ExactSizeIterator`; the length is known here.
struct ExactChain<I> {
    inner: I,
    len: usize,
}

impl<I: Iterator> Iterator for ExactChain<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let x = self.inner.next()?;
        self.len -= 1;
        Some(x)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }

    fn nth(&mut self, n: usize) -> Option<I::Item> {
        let x = self.inner.nth(n);
        self.len = self.len.saturating_sub(n + 1);
        x
    }
}

impl<I: Iterator> ExactSizeIterator for ExactChain<I> {}

impl<I: DoubleEndedIterator> DoubleEndedIterator for ExactChain<I> {
    fn next_back(&mut self) -> Option<I::Item> {
        let x = self.inner.next_back()?;
        self.len -= 1;
        Some(x)
    }
}

impl Serialize for BarSeq {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}
