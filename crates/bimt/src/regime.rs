//! The five training regimes (Vanilla, L1, L1+Local, L1+Swap, BIMT) and what
//! each turns on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::BimtError;

/// The five training regimes of STUDY §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Regime {
    /// FullyDense: no penalty, no swaps.
    Vanilla,
    /// `cc(0)`: plain L1 on weights and biases.
    L1,
    /// `cc(2.0)`: L1 weighted by wiring distance.
    L1Local,
    /// `cc(0)` plus swaps.
    L1Swap,
    /// `cc(2.0)` plus swaps (L1+Local+Swap).
    Bimt,
}

impl Regime {
    /// The five regimes, in the paper's order.
    pub const ALL: [Regime; 5] = [Regime::Vanilla, Regime::L1, Regime::L1Local, Regime::L1Swap, Regime::Bimt];

    /// The weight factor `wf` of the training penalty `cc(wf)`, or `None`
    /// when the regime has no penalty.
    pub fn penalty_weight_factor(self) -> Option<f32> {
        match self {
            Regime::Vanilla => None,
            Regime::L1 | Regime::L1Swap => Some(0.0),
            Regime::L1Local | Regime::Bimt => Some(2.0),
        }
    }

    /// Whether the regime swaps neurons.
    pub fn swaps(self) -> bool {
        matches!(self, Regime::L1Swap | Regime::Bimt)
    }

    /// The name the command line uses (`l1-local`, …).
    pub fn name(self) -> &'static str {
        match self {
            Regime::Vanilla => "vanilla",
            Regime::L1 => "l1",
            Regime::L1Local => "l1-local",
            Regime::L1Swap => "l1-swap",
            Regime::Bimt => "bimt",
        }
    }

    /// The paper's label for tables and figures.
    pub fn label(self) -> &'static str {
        match self {
            Regime::Vanilla => "Vanilla",
            Regime::L1 => "L1",
            Regime::L1Local => "L1+Local",
            Regime::L1Swap => "L1+Swap",
            Regime::Bimt => "BIMT",
        }
    }
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Regime {
    type Err = BimtError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Regime::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| BimtError::UnknownRegime(s.into()))
    }
}

impl From<Regime> for String {
    fn from(r: Regime) -> String {
        r.name().into()
    }
}

impl TryFrom<String> for Regime {
    type Error = BimtError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Regime::ALL {
            assert_eq!(r.name().parse::<Regime>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("BIMT".parse::<Regime>().is_err());
        assert!(Regime::Bimt.swaps() && !Regime::L1Local.swaps());
    }
}
