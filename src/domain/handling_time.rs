//! Handling times as the supervisors' statistics keep them (docs/sla.md, "How the statistics
//! are computed"): a clock's worked minutes, exact below 64 and kept to six significant binary
//! digits above (rounded down: at most 1/32, 3.1 %, below the exact value), counted in a
//! [`Histogram`]. A day's or a month's histogram of one unit, matter and clock kind then holds
//! at most a few hundred values whatever the number of clocks, and histograms merge by adding.
//!
//! Stored as text, `minutes:clocks` pairs in ascending order separated by spaces
//! (`"12:3 40:1 1984:2"`), on both backends; the migration's SQL writes the same text
//! (`migrations/*/2026-12-07-000020_rollup_histograms`).

use std::fmt::Write as _;

/// Values below this are kept exactly.
const EXACT_BELOW: i64 = 64;
/// Significant binary digits kept above [`EXACT_BELOW`].
const DIGITS: u32 = 6;
/// Values from this on are kept exactly too (4,000 years of minutes: never a clock's).
const EXACT_FROM: i64 = 1 << 31;
/// Slots per power of two above [`EXACT_BELOW`].
const PER_OCTAVE: usize = 1 << (DIGITS - 1);
/// Dense slots: the exact values, then 25 octaves (64 … 2³¹ − 1).
const SLOTS: usize = EXACT_BELOW as usize + 25 * PER_OCTAVE;

/// The value a handling time is counted as: itself below 64 minutes (and from 2³¹ on),
/// else its six leading binary digits followed by zeros.
pub fn bucket(minutes: i64) -> i64 {
    if !(EXACT_BELOW..EXACT_FROM).contains(&minutes) {
        return minutes;
    }
    let shift = 63 - minutes.leading_zeros() - (DIGITS - 1);
    (minutes >> shift) << shift
}

/// The dense slot of a bucketed value, when it has one.
fn slot(value: i64) -> Option<usize> {
    if !(0..EXACT_FROM).contains(&value) {
        return None;
    }
    if value < EXACT_BELOW {
        return Some(value as usize);
    }
    let octave = (63 - value.leading_zeros()) as usize - DIGITS as usize;
    let shift = 63 - value.leading_zeros() - (DIGITS - 1);
    let within = (value >> shift) as usize - PER_OCTAVE;
    Some(EXACT_BELOW as usize + octave * PER_OCTAVE + within)
}

/// The bucketed value of a dense slot.
fn value_of(slot: usize) -> i64 {
    if slot < EXACT_BELOW as usize {
        return slot as i64;
    }
    let above = slot - EXACT_BELOW as usize;
    let (octave, within) = (above / PER_OCTAVE, above % PER_OCTAVE);
    ((PER_OCTAVE + within) as i64) << (octave as u32 + 1)
}

/// How many clocks had each handling time (bucketed). Values with a dense slot (every
/// realistic one) are counted in an array, so merging thousands of stored histograms costs
/// additions; others (negative, or from 2³¹ on) in a short list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    dense: Vec<i64>,
    other: Vec<(i64, i64)>,
}

/// A stored histogram that is not `minutes:clocks` pairs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a handling-time histogram: `{0}`")]
pub struct Malformed(pub String);

impl Histogram {
    /// Counts `clocks` more clocks with handling time `minutes` (bucketed here).
    pub fn add(&mut self, minutes: i64, clocks: i64) {
        let value = bucket(minutes);
        match slot(value) {
            Some(i) => {
                if self.dense.len() <= i {
                    self.dense.resize(SLOTS, 0);
                }
                self.dense[i] += clocks;
            }
            None => match self.other.iter_mut().find(|(v, _)| *v == value) {
                Some((_, n)) => *n += clocks,
                None => self.other.push((value, clocks)),
            },
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if self.dense.len() < other.dense.len() {
            self.dense.resize(other.dense.len(), 0);
        }
        for (mine, theirs) in self.dense.iter_mut().zip(&other.dense) {
            *mine += theirs;
        }
        for &(value, clocks) in &other.other {
            self.add(value, clocks);
        }
    }

    /// Adds the counts of a stored histogram (`minutes:clocks` pairs; empty text: none).
    pub fn add_text(&mut self, text: &str) -> Result<(), Malformed> {
        for pair in text.split_ascii_whitespace() {
            let parsed = pair
                .split_once(':')
                .and_then(|(v, n)| Some((v.parse::<i64>().ok()?, n.parse::<i64>().ok()?)));
            let (value, clocks) = parsed.ok_or_else(|| Malformed(pair.to_string()))?;
            self.add(value, clocks);
        }
        Ok(())
    }

    /// Every (bucketed value, clocks) pair with clocks, ascending by value.
    pub fn counts(&self) -> Vec<(i64, i64)> {
        let mut pairs: Vec<(i64, i64)> = self
            .dense
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n != 0)
            .map(|(i, &n)| (value_of(i), n))
            .chain(self.other.iter().copied().filter(|&(_, n)| n != 0))
            .collect();
        pairs.sort_unstable();
        pairs
    }

    /// The stored form: `minutes:clocks` pairs, ascending, separated by spaces.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (value, clocks) in self.counts() {
            if !text.is_empty() {
                text.push(' ');
            }
            let _ = write!(text, "{value}:{clocks}");
        }
        text
    }

    /// The nearest-rank `p`-th percentile: the value at rank ⌈p · n / 100⌉ counting from 1,
    /// over the bucketed values. `None` when no clock is counted.
    pub fn percentile(&self, p: usize) -> Option<i64> {
        let counts = self.counts();
        let n: u64 = counts.iter().map(|&(_, c)| c.max(0) as u64).sum();
        if n == 0 {
            return None;
        }
        let rank = (p as u64 * n).div_ceil(100).max(1);
        let mut seen = 0;
        for (value, clocks) in counts {
            seen += clocks.max(0) as u64;
            if seen >= rank {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_times_are_exact_larger_ones_keep_six_binary_digits() {
        for m in 0..64 {
            assert_eq!(bucket(m), m);
        }
        assert_eq!(bucket(64), 64);
        assert_eq!(bucket(65), 64);
        assert_eq!(bucket(127), 126);
        assert_eq!(bucket(128), 128);
        assert_eq!(bucket(131), 128);
        assert_eq!(bucket(132), 132);
        assert_eq!(bucket(9_600), 9_472);
        assert_eq!(bucket(EXACT_FROM - 1), (63 << 25));
        assert_eq!(bucket(EXACT_FROM), EXACT_FROM);
        assert_eq!(bucket(-5), -5);
    }

    #[test]
    fn a_bucket_is_at_most_one_thirty_second_below_the_value() {
        let mut m = 1;
        while m < EXACT_FROM {
            for v in [m, m + 1, 2 * m - 1] {
                let b = bucket(v);
                assert!(b <= v && (v - b) * 32 <= v, "{v} -> {b}");
                assert_eq!(bucket(b), b, "a bucket is its own bucket");
            }
            m *= 2;
        }
    }

    #[test]
    fn every_slot_holds_its_own_value() {
        for i in 0..SLOTS {
            assert_eq!(slot(value_of(i)), Some(i), "slot {i}");
        }
        let mut v = 0;
        while v < EXACT_FROM {
            let b = bucket(v);
            assert_eq!(value_of(slot(b).unwrap()), b);
            v = v * 3 / 2 + 1;
        }
    }

    #[test]
    fn text_round_trips_and_merges_by_adding() {
        let mut a = Histogram::default();
        for m in [5, 5, 70, 71, 9_600, -1, EXACT_FROM + 7] {
            a.add(m, 1);
        }
        assert_eq!(a.to_text(), "-1:1 5:2 70:2 9472:1 2147483655:1");
        let mut b = Histogram::default();
        b.add_text(&a.to_text()).unwrap();
        assert_eq!(b, a);
        b.add_text("5:3 9500:1").unwrap();
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged.to_text(), "-1:2 5:7 70:4 9472:3 2147483655:2");
        assert_eq!(Histogram::default().to_text(), "");
        assert!(b.add_text("5:x").is_err());
        assert!(b.add_text("5").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank_over_the_bucketed_values() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(50), None);
        for m in [10, 20, 30, 40] {
            h.add(m, 1);
        }
        assert_eq!(h.percentile(50), Some(20));
        assert_eq!(h.percentile(95), Some(40));
        assert_eq!(h.percentile(0), Some(10));
        h.add(1_000, 96);
        assert_eq!(h.percentile(50), Some(bucket(1_000)));
        assert_eq!(h.percentile(4), Some(40));
    }
}
