//! Where each neuron sits (STUDY §2): the study's coordinates per layer and the
//! distances between layers.

use serde::{Deserialize, Serialize};

use crate::{BimtError, Mlp};

/// 2-D coordinates of every neuron, one list per layer (input first).
///
/// STUDY §2: every layer but the last on a grid in the unit square, the
/// output layer on a ring `0.5 + (cos θ, sin θ)/4`,
/// `θ_i = 2π·linspace(1/(2n), 1 − 1/(2n), n)`. A square width `s²` is an
/// `s × s` grid with points at `linspace(1/(2s), 1 − 1/(2s), s)` per axis,
/// row-major (the study's case). Any other width `n` goes on a near-square
/// grid of `c = ⌈√n⌉` columns and `r = ⌈n/c⌉` rows, points at the centres of
/// its cells the same way, filled row-major, so the last row may be short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Per layer, each neuron's `[x, y]`.
    pub layers: Vec<Vec<[f32; 2]>>,
}

impl Layout {
    /// The study's layout for layer widths `sizes`: at least two layers, no
    /// width of 0.
    pub fn study(sizes: &[usize]) -> Result<Layout, BimtError> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(BimtError::Config(format!(
                "a layout needs at least two layers and no width of 0, got sizes {sizes:?}"
            )));
        }
        let last = sizes.len() - 1;
        let layers = sizes.iter().enumerate().map(|(l, &n)| if l == last { ring(n) } else { grid(n) }).collect();
        Ok(Layout { layers })
    }

    /// Checks that the layout has `model`'s layer widths.
    pub fn check(&self, model: &Mlp) -> Result<(), BimtError> {
        let sizes = model.sizes();
        let got: Vec<usize> = self.layers.iter().map(|l| l.len()).collect();
        if got != sizes {
            return Err(BimtError::Config(format!("layout has layers of {got:?} neurons, the model {sizes:?}")));
        }
        Ok(())
    }

    /// Manhattan distance `D_l[o, i]` between out-neuron `o` of layer `l+1`
    /// and in-neuron `i` of layer `l`, row-major `[n_out, n_in]`.
    pub fn distances(&self, l: usize) -> Vec<f32> {
        let (ins, outs) = (&self.layers[l], &self.layers[l + 1]);
        let mut d = Vec::with_capacity(ins.len() * outs.len());
        for o in outs {
            for i in ins {
                d.push((o[0] - i[0]).abs() + (o[1] - i[1]).abs());
            }
        }
        d
    }
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![a];
    }
    (0..n).map(|i| a + (b - a) * i as f64 / (n - 1) as f64).collect()
}

fn grid(n: usize) -> Vec<[f32; 2]> {
    let mut cols = (n as f64).sqrt().round() as usize;
    if cols * cols < n {
        cols += 1;
    }
    let rows = n.div_ceil(cols);
    let ticks = |k: usize| linspace(1.0 / (2 * k) as f64, 1.0 - 1.0 / (2 * k) as f64, k);
    let (xs, ys) = (ticks(cols), ticks(rows));
    ys.iter().flat_map(|&y| xs.iter().map(move |&x| [x as f32, y as f32])).take(n).collect()
}

fn ring(n: usize) -> Vec<[f32; 2]> {
    let f = n as f64 * 2.0;
    linspace(1.0 / f, 1.0 - 1.0 / f, n)
        .into_iter()
        .map(|t| {
            let th = 2.0 * std::f64::consts::PI * t;
            [(0.5 + th.cos() / 4.0) as f32, (0.5 + th.sin() / 4.0) as f32]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_layout_matches_the_spec() {
        let l = Layout::study(&[784, 100, 100, 10]).unwrap();
        assert_eq!(l.layers[0].len(), 784);
        assert_eq!(l.layers[0][0], [1.0 / 56.0, 1.0 / 56.0]);
        assert_eq!(l.layers[0][1][1], 1.0 / 56.0); // row-major: x varies first
        assert!((l.layers[1][99][0] - 0.95).abs() < 1e-6);
        let o0 = l.layers[3][0];
        let th = 2.0 * std::f32::consts::PI / 20.0;
        assert!((o0[0] - (0.5 + th.cos() / 4.0)).abs() < 1e-6);
        assert!((o0[1] - (0.5 + th.sin() / 4.0)).abs() < 1e-6);
        let d = l.distances(2);
        assert_eq!(d.len(), 1000);
    }

    #[test]
    fn other_widths_go_on_a_near_square_grid() {
        let l = Layout::study(&[784, 128, 7, 10]).unwrap();
        // 128 = 12 columns x 11 rows, the last row holding 8.
        assert_eq!(l.layers[1].len(), 128);
        assert_eq!(l.layers[1][0], [1.0 / 24.0, 1.0 / 22.0]);
        assert!((l.layers[1][12][1] - 3.0 / 22.0).abs() < 1e-6);
        assert!((l.layers[1][127][0] - 15.0 / 24.0).abs() < 1e-6);
        assert!(l.layers[1].iter().all(|p| p.iter().all(|c| (0.0..1.0).contains(c))));
        // 7 = 3 x 3 with one point in the last row; 1 neuron sits in the middle.
        assert_eq!(l.layers[2].len(), 7);
        assert_eq!(Layout::study(&[1, 1]).unwrap().layers[0], vec![[0.5, 0.5]]);
        for bad in [&[784][..], &[784, 0, 10]] {
            assert!(Layout::study(bad).unwrap_err().to_string().contains("at least two layers"));
        }
    }
}
