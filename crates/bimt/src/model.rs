//! The study's network, built on `modcirc-mlp`.

use modcirc_dataset::Rng;
use modcirc_mlp::{Activation, Mlp};

use crate::BimtError;

/// The study's layer widths (STUDY §2).
pub const STUDY_SIZES: [usize; 4] = [784, 100, 100, 10];

/// The study's hidden activation (STUDY §2).
pub const STUDY_ACTIVATION: Activation = Activation::Silu;

/// A freshly initialised network of widths `sizes`: PyTorch's default
/// initialisation, drawn from the seed's own stream.
pub fn init_model(sizes: &[usize], activation: Activation, seed: u64) -> Result<Mlp, BimtError> {
    let mut rng = Rng::derive(seed, 0x1417);
    Mlp::init(sizes, activation, &mut || rng.next_f64()).map_err(|e| BimtError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_seeded() {
        let a = init_model(&STUDY_SIZES, STUDY_ACTIVATION, 3).unwrap();
        assert_eq!(a, init_model(&STUDY_SIZES, STUDY_ACTIVATION, 3).unwrap());
        assert_ne!(a, init_model(&STUDY_SIZES, STUDY_ACTIVATION, 4).unwrap());
        assert!(init_model(&[784, 0, 10], STUDY_ACTIVATION, 0).is_err());
    }
}
