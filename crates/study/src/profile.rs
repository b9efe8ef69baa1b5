//! The study's run sizes (`--profile`): what each sets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::StudyError;

/// How much of the study a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// STUDY's defaults: 40 000 steps, 50 bootstraps of 500 pairs.
    Full,
    /// A smaller study: 6 000 steps, 20 bootstraps of 500 (run times: README).
    Quick,
    /// The pipeline end to end, for CI: 600 steps (one relocation), 5 bootstraps of 200.
    Smoke,
}

/// What a profile sets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileSettings {
    /// Training steps per model.
    pub steps: usize,
    /// Bootstrap resamples per discovery.
    pub bootstraps: usize,
    /// Pairs per resample.
    pub sample: usize,
    /// Repeats of each inference timing.
    pub inference_repeats: usize,
    /// Training seeds per regime (0, 1, ...), where `--seeds` does not say.
    #[serde(default)]
    pub seeds: u64,
    /// Random circuits per pool of each control (STUDY §10).
    #[serde(default = "default_random_circuits")]
    pub random_circuits: usize,
    /// Training pairs optimal ablation's constants are fitted on (STUDY §12).
    #[serde(default = "default_optimal_pairs")]
    pub optimal_pairs: usize,
}

fn default_optimal_pairs() -> usize {
    modcirc_acdc::DEFAULT_OPTIMAL_PAIRS
}

fn default_random_circuits() -> usize {
    modcirc_acdc::DEFAULT_RANDOM_CIRCUITS
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Full, Profile::Quick, Profile::Smoke];

    /// Its settings.
    pub fn settings(self) -> ProfileSettings {
        match self {
            Profile::Full => ProfileSettings {
                steps: modcirc_bimt::STUDY_STEPS,
                bootstraps: modcirc_acdc::DEFAULT_BOOTSTRAPS,
                sample: modcirc_acdc::DEFAULT_SAMPLE,
                inference_repeats: 50,
                seeds: 5,
                random_circuits: modcirc_acdc::DEFAULT_RANDOM_CIRCUITS,
                optimal_pairs: modcirc_acdc::DEFAULT_OPTIMAL_PAIRS,
            },
            Profile::Quick => ProfileSettings {
                steps: 6_000,
                bootstraps: 20,
                sample: 500,
                inference_repeats: 20,
                seeds: 3,
                random_circuits: modcirc_acdc::DEFAULT_RANDOM_CIRCUITS,
                optimal_pairs: modcirc_acdc::DEFAULT_OPTIMAL_PAIRS,
            },
            Profile::Smoke => ProfileSettings {
                steps: 600,
                bootstraps: 5,
                sample: 200,
                inference_repeats: 5,
                seeds: 2,
                random_circuits: 20,
                optimal_pairs: 40,
            },
        }
    }

    /// `full`, `quick` or `smoke`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Full => "full",
            Profile::Quick => "quick",
            Profile::Smoke => "smoke",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = StudyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| StudyError::Invalid(format!("unknown profile {s:?} (expected full, quick or smoke)")))
    }
}
