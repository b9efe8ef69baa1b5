//! Tasks and their pairs (STUDY §4): which digits are clean and corrupted, and
//! the paired images of a split.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DatasetError, ImageSet, Rng};

/// The labels a pair spec may name (MNIST's ten digits).
const LABELS: std::ops::RangeInclusive<u8> = 0..=9;

/// One (clean, corrupted) digit pair of a task (STUDY §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairSpec {
    /// The clean digit.
    pub clean: u8,
    /// The corrupted digit.
    pub corrupted: u8,
}

/// A circuit-discovery task: a name and the union of its digit pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// `circle`, `line`, or the spec as given.
    pub name: String,
    /// Its digit pairs.
    pub pairs: Vec<PairSpec>,
}

impl Task {
    /// The circle-detection task: (8, 3), (6, 5).
    pub fn circle() -> Task {
        Task::from_pairs("circle", &[(8, 3), (6, 5)])
    }
    /// The straight-line task: (4, 9), (1, 3), (7, 9).
    pub fn line() -> Task {
        Task::from_pairs("line", &[(4, 9), (1, 3), (7, 9)])
    }

    /// The task in a file name, of `[A-Za-z0-9._-]` only: its name where
    /// that is all it holds (`circle`), else its pairs as `3v8_8v3`.
    ///
    /// ```
    /// use modcirc_dataset::Task;
    /// assert_eq!(Task::parse("3:8,8:3").unwrap().file_stem(), "3v8_8v3");
    /// assert_eq!(Task::circle().file_stem(), "circle");
    /// ```
    pub fn file_stem(&self) -> String {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !self.name.is_empty() && self.name.chars().all(plain) && !self.name.starts_with('.') {
            return self.name.clone();
        }
        let pairs: Vec<String> = self.pairs.iter().map(|p| format!("{}v{}", p.clean, p.corrupted)).collect();
        pairs.join("_")
    }

    fn from_pairs(name: &str, pairs: &[(u8, u8)]) -> Task {
        Task {
            name: name.into(),
            pairs: pairs.iter().map(|&(clean, corrupted)| PairSpec { clean, corrupted }).collect(),
        }
    }

    /// `circle`, `line`, or pairs like `8:3,6:5`.
    pub fn parse(spec: &str) -> Result<Task, DatasetError> {
        match spec {
            "circle" => return Ok(Task::circle()),
            "line" => return Ok(Task::line()),
            _ => {}
        }
        let bad = |reason: String| DatasetError::BadPairSpec { spec: spec.into(), reason };
        let mut pairs = Vec::new();
        for part in spec.split(',') {
            let part = part.trim();
            let (a, b) = part.split_once(':').ok_or_else(|| {
                bad(format!("{part:?} is not `clean:corrupted` (a task is `circle`, `line`, or pairs like `8:3,6:5`)"))
            })?;
            let digit = |s: &str| -> Result<u8, DatasetError> {
                let d: u8 = s.trim().parse().map_err(|_| bad(format!("{s:?} is not a digit")))?;
                if !LABELS.contains(&d) {
                    return Err(bad(format!("digit {d} is outside the label set {}-{}", LABELS.start(), LABELS.end())));
                }
                Ok(d)
            };
            let (clean, corrupted) = (digit(a)?, digit(b)?);
            if clean == corrupted {
                return Err(bad(format!("pair {part:?} has clean == corrupted")));
            }
            pairs.push(PairSpec { clean, corrupted });
        }
        Ok(Task { name: spec.into(), pairs })
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// One clean image paired with one corrupted image, by dataset index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// The clean image's index in the split.
    pub clean: usize,
    /// The corrupted image's index in the split.
    pub corrupted: usize,
    /// The clean image's digit.
    pub clean_digit: u8,
    /// The corrupted image's digit.
    pub corrupted_digit: u8,
}

/// The pairs of a task on one split (STUDY §3): each digit's images are
/// shuffled with the seed, and the i-th clean image of a digit is paired with
/// the i-th corrupted image of its partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedDataset {
    /// The task.
    pub task: Task,
    /// The pairing's seed.
    pub seed: u64,
    /// Every pair.
    pub pairs: Vec<Pair>,
}

impl PairedDataset {
    /// Pairs the images of `task`'s digits in `split` (STUDY §3), shuffled from `seed`.
    pub fn new(split: &ImageSet, task: &Task, seed: u64) -> Result<PairedDataset, DatasetError> {
        let mut by_digit: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
        for p in &task.pairs {
            for d in [p.clean, p.corrupted] {
                by_digit.entry(d).or_insert_with(|| {
                    let mut idx: Vec<usize> = (0..split.len()).filter(|&i| split.labels[i] == d).collect();
                    Rng::derive(seed, d as u64).shuffle(&mut idx);
                    idx
                });
            }
        }
        let mut pairs = Vec::new();
        for p in &task.pairs {
            let (c, r) = (&by_digit[&p.clean], &by_digit[&p.corrupted]);
            if c.is_empty() || r.is_empty() {
                return Err(DatasetError::EmptyPair {
                    clean: p.clean,
                    corrupted: p.corrupted,
                    missing: if c.is_empty() { p.clean } else { p.corrupted },
                });
            }
            pairs.extend(c.iter().zip(r).map(|(&clean, &corrupted)| Pair {
                clean,
                corrupted,
                clean_digit: p.clean,
                corrupted_digit: p.corrupted,
            }));
        }
        Ok(PairedDataset { task: task.clone(), seed, pairs })
    }

    /// Pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }
    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
    /// The pairs at `indices` (repeats allowed, as in a bootstrap resample).
    pub fn select(&self, indices: &[usize]) -> Vec<Pair> {
        indices.iter().map(|&i| self.pairs[i]).collect()
    }

    /// `n` pairs (all of them if there are fewer) drawn with `seed` from
    /// every digit pair of the task in proportion to its pairs, by largest
    /// remainder, without repeats: the list's head is one digit pair, so a
    /// fit on its first `n` would see one (STUDY §12).
    ///
    /// ```
    /// use modcirc_dataset::{ImageSet, PairedDataset, Task};
    /// let labels: Vec<u8> = (0..200).map(|i| (i % 10) as u8).collect();
    /// let split = ImageSet { images: vec![0.0; 200], labels, rows: 1, cols: 1 };
    /// let pairs = PairedDataset::new(&split, &Task::parse("0:1,2:3").unwrap(), 7).unwrap();
    /// let drawn = pairs.stratified(10, 3);
    /// assert_eq!(drawn.len(), 10);
    /// assert_eq!(drawn.iter().filter(|p| p.clean_digit == 0).count(), 5);
    /// ```
    pub fn stratified(&self, n: usize, seed: u64) -> Vec<Pair> {
        if n >= self.pairs.len() {
            return self.pairs.clone();
        }
        let mut groups: BTreeMap<(u8, u8), Vec<usize>> = BTreeMap::new();
        for (i, p) in self.pairs.iter().enumerate() {
            groups.entry((p.clean_digit, p.corrupted_digit)).or_default().push(i);
        }
        let total = self.pairs.len();
        // Each group's whole share, then one more to the largest remainders.
        let mut take: Vec<(usize, usize, (u8, u8))> =
            groups.iter().map(|(k, v)| (v.len() * n / total, (v.len() * n) % total, *k)).collect();
        let short = n - take.iter().map(|t| t.0).sum::<usize>();
        let mut order: Vec<usize> = (0..take.len()).collect();
        order.sort_by_key(|&g| (std::cmp::Reverse(take[g].1), g));
        order.iter().take(short).for_each(|&g| take[g].0 += 1);
        let mut out = Vec::with_capacity(n);
        for (count, _, key) in take {
            let mut idx = groups[&key].clone();
            Rng::derive(seed, 0x5EED_0000 + ((key.0 as u64) << 8) + key.1 as u64).shuffle(&mut idx);
            out.extend(idx[..count].iter().map(|&i| self.pairs[i]));
        }
        out
    }
}

/// Seeded resampling with replacement (STUDY §5): resample `b` draws
/// `sample` indices from `0..population`, independent of the other resamples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Items to draw from.
    pub population: usize,
    /// Items per resample.
    pub sample: usize,
    /// Seeds every resample.
    pub seed: u64,
}

impl Bootstrap {
    /// Resamples of `sample` from `population` items, with replacement; both must be at least 1.
    pub fn new(population: usize, sample: usize, seed: u64) -> Result<Bootstrap, DatasetError> {
        if population == 0 {
            return Err(DatasetError::Bootstrap("cannot resample an empty population".into()));
        }
        if sample == 0 {
            return Err(DatasetError::Bootstrap("sample size must be at least 1".into()));
        }
        Ok(Bootstrap { population, sample, seed })
    }

    /// Resample `b`: `sample` indices in `0..population`, the same for the same seed and `b`.
    pub fn resample(&self, b: usize) -> Vec<usize> {
        let mut rng = Rng::derive(self.seed, 0xB007 + b as u64);
        (0..self.sample).map(|_| rng.below(self.population)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(labels: &[u8]) -> ImageSet {
        ImageSet { images: vec![0.0; labels.len()], labels: labels.to_vec(), rows: 1, cols: 1 }
    }

    #[test]
    fn parses_named_tasks_and_pair_lists() {
        assert_eq!(Task::parse("circle").unwrap(), Task::circle());
        assert_eq!(Task::parse("line").unwrap().pairs.len(), 3);
        let t = Task::parse("8:3, 6:5").unwrap();
        assert_eq!(t.pairs, Task::circle().pairs);
    }

    #[test]
    fn bad_specs_say_why() {
        for (spec, needle) in [
            ("12:3", "outside the label set"),
            ("3:3", "clean == corrupted"),
            ("8-3", "not `clean:corrupted`"),
            ("a:3", "not a digit"),
            ("", "not `clean:corrupted`"),
        ] {
            let e = Task::parse(spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn pairs_ith_with_ith_after_a_seeded_shuffle() {
        let labels = [8, 3, 8, 3, 3, 8, 6, 5, 6, 1];
        let s = split(&labels);
        let d = PairedDataset::new(&s, &Task::circle(), 3).unwrap();
        // min(3 eights, 3 threes) + min(2 sixes, 1 five)
        assert_eq!(d.len(), 4);
        for p in &d.pairs {
            assert_eq!(labels[p.clean], p.clean_digit);
            assert_eq!(labels[p.corrupted], p.corrupted_digit);
        }
        let mut eights: Vec<_> = d.pairs[..3].iter().map(|p| p.clean).collect();
        eights.sort();
        assert_eq!(eights, vec![0, 2, 5]);
        assert_eq!(d, PairedDataset::new(&s, &Task::circle(), 3).unwrap());
        let other_seeds: Vec<_> = (4..20).map(|seed| PairedDataset::new(&s, &Task::circle(), seed).unwrap()).collect();
        assert!(other_seeds.iter().any(|o| o.pairs != d.pairs), "the seed must matter");
    }

    #[test]
    fn a_pair_without_images_is_an_error() {
        let s = split(&[8, 3, 6]);
        let e = PairedDataset::new(&s, &Task::circle(), 0).unwrap_err();
        assert!(matches!(e, DatasetError::EmptyPair { clean: 6, corrupted: 5, missing: 5 }), "{e}");
    }

    #[test]
    fn bootstrap_is_seeded_with_replacement() {
        let b = Bootstrap::new(10, 500, 1).unwrap();
        let r0 = b.resample(0);
        assert_eq!(r0.len(), 500);
        assert!(r0.iter().all(|&i| i < 10));
        assert_eq!(r0, b.resample(0));
        assert_ne!(r0, b.resample(1));
        // 500 draws from 10 must repeat (with replacement).
        let mut u = r0.clone();
        u.sort();
        u.dedup();
        assert!(u.len() <= 10);
        assert!(Bootstrap::new(0, 5, 1).is_err());
        assert!(Bootstrap::new(5, 0, 1).is_err());
    }
}
