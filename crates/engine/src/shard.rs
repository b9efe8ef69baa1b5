//! Shares of a plan: each model with every unit that needs it, so that
//! no shard waits for another, given out by estimated cost.

use std::str::FromStr;

use modcirc_bimt::TrainConfig;
use modcirc_study::discovery::DiscoverySettings;

/// Estimated costs, in seconds of one core, from the full study on a
/// 2-core Xeon (train 40 000 steps of a 784-100-100-10 SiLU net in about
/// 29 s; a discovery of 50 resamples of 500 pairs, with the study's six
/// compared rules, about 1.2 s; STUDY §9 about 1 s). They only balance
/// shards and warn of long plans: a wrong estimate costs time, never
/// results.
pub mod cost {
    use super::{DiscoverySettings, TrainConfig};

    /// Weights of a network (the products a forward pass computes per image).
    pub fn weights(sizes: &[usize]) -> f64 {
        sizes.windows(2).map(|w| (w[0] * w[1]) as f64).sum()
    }

    /// One training.
    pub fn train(config: &TrainConfig) -> f64 {
        let swaps = if config.regime.swaps() { 1.25 } else { 1.0 };
        config.steps as f64 * config.batch_size as f64 * weights(&config.sizes) * 8.1e-11 * swaps
    }

    /// One discovery.
    pub fn discovery(sizes: &[usize], settings: &DiscoverySettings) -> f64 {
        let c = &settings.config;
        let rules = 1.0 + 0.5 * c.compare.len() as f64;
        c.bootstraps as f64 * c.sample as f64 * weights(sizes) * 1.8e-10 * rules + 0.05
    }

    /// One STUDY §9 analysis.
    pub fn structure(sizes: &[usize]) -> f64 {
        weights(sizes) * 1.1e-5
    }

    /// One STUDY §8 analysis (reproduce's seed-0 models).
    pub fn beyond(sizes: &[usize]) -> f64 {
        weights(sizes) * 3.4e-5
    }

    /// STUDY §10 on one discovery: the same discovery on the any-digit
    /// pairs, and `random` circuits' evaluations (measured: 2.5 s for 400
    /// circuits of a 784-100-100-10 model on 1 866 pairs).
    pub fn controls(sizes: &[usize], settings: &DiscoverySettings, random: usize) -> f64 {
        discovery(sizes, settings) + random as f64 * weights(sizes) * 5.0e-8
    }

    /// A planted model (STUDY §11) with `methods` methods' scores on it
    /// (measured in the full study: 20 000 steps of interchange
    /// intervention training in about 41 s, a method on the three tasks
    /// of 500 pairs about 1.1 s).
    pub fn planted(steps: usize, methods: usize) -> f64 {
        steps as f64 * 2.1e-3 + methods as f64 * 1.1
    }

    /// A regime's Boolean networks, `seeds` of each of `steps` steps
    /// (measured: 1.3 s for the full profile's 10 seeds of 3 000 steps).
    pub fn boolean(seeds: usize, steps: usize) -> f64 {
        (seeds * steps) as f64 * 4.5e-5
    }

    /// A model with every unit that needs it, what a shard takes whole:
    /// its training, `tasks` discoveries and a STUDY §9 analysis per
    /// discovery setting, `beyond_tasks` STUDY §8 analyses, and STUDY §10
    /// on `controls` (random circuits per pool) for each discovery.
    pub fn group<'a>(
        config: &TrainConfig,
        settings: impl IntoIterator<Item = &'a DiscoverySettings>,
        tasks: usize,
        beyond_tasks: usize,
        controls: Option<usize>,
    ) -> f64 {
        let sizes = &config.sizes;
        let per_task =
            |s: &DiscoverySettings| discovery(sizes, s) + controls.map_or(0.0, |r| self::controls(sizes, s, r));
        let analyses: f64 = settings.into_iter().map(|s| per_task(s) * tasks as f64 + structure(sizes)).sum();
        train(config) + analyses + beyond(sizes) * beyond_tasks as f64
    }
}

/// Shard `index` of `count`: Slurm's array task `index` (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// From 0 to `count - 1`.
    pub index: usize,
    /// At least 1.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("{s:?} is not I/N (shard I of N, I from 0 to N-1, as Slurm numbers array tasks)");
        let (i, n) = s.split_once('/').ok_or_else(usage)?;
        let (index, count): (usize, usize) =
            (i.trim().parse().map_err(|_| usage())?, n.trim().parse().map_err(|_| usage())?);
        if count == 0 || count > 100_000 {
            return Err(format!("{s}: N must be in 1..=100000"));
        }
        if index >= count {
            return Err(format!("{s}: I must be in 0..={} for {count} shards", count - 1));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Shares out groups of work (each a model with every unit that needs it,
/// so that no shard waits for another) among `count` shards: longest first,
/// each to the least loaded shard (ties: the lower shard), groups of equal
/// cost in the order of their keys. The same groups give the same shares
/// on every machine. Returns each group's shard.
pub fn assign(groups: &[(String, f64)], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| groups[b].1.total_cmp(&groups[a].1).then_with(|| groups[a].0.cmp(&groups[b].0)));
    let mut load = vec![0.0f64; count.max(1)];
    let mut shard = vec![0; groups.len()];
    for g in order {
        let (best, _) =
            load.iter().enumerate().fold((0, f64::INFINITY), |acc, (i, &l)| if l < acc.1 { (i, l) } else { acc });
        shard[g] = best;
        load[best] += groups[g].1;
    }
    shard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_assign_by_cost() {
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard { index: 0, count: 1 });
        for bad in ["3", "1/0", "-1/2", "a/b", "4/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let groups: Vec<(String, f64)> =
            [9.0, 1.0, 1.0, 4.0, 4.0, 1.0].iter().enumerate().map(|(i, c)| (format!("g{i}"), *c)).collect();
        let s = assign(&groups, 2);
        let load = |k| groups.iter().zip(&s).filter(|(_, &sh)| sh == k).map(|(g, _)| g.1).sum::<f64>();
        assert_eq!((load(0), load(1)), (10.0, 10.0));
        assert_eq!(s, assign(&groups, 2), "deterministic");
        // More shards than groups: the extra shards get nothing.
        let s = assign(&groups[..2], 4);
        assert_eq!(s, [0, 1]);
    }
}
