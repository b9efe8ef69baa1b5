use serde::{Deserialize, Serialize};

/// 2-D coordinates of every neuron, one list per layer (input first).
/// STUDY §2: square layers on a grid with points at
/// `linspace(1/(2n), 1-1/(2n), n)` per axis, row-major; the output layer on a
/// ring `0.5 + (cos θ, sin θ)/4`, `θ_i = 2π·linspace(1/20, 19/20, 10)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub layers: Vec<Vec<[f32; 2]>>,
}

impl Layout {
    /// The study's layout for layer widths `sizes` (every layer but the last a
    /// perfect square).
    /// The study's layout, or `None` when a non-output width is not a square.
    pub fn try_study(sizes: &[usize]) -> Option<Layout> {
        let square = |n: usize| {
            let s = (n as f64).sqrt().round() as usize;
            s * s == n
        };
        (sizes.len() >= 2 && sizes[..sizes.len() - 1].iter().all(|&n| square(n))).then(|| Layout::study(sizes))
    }

    pub fn study(sizes: &[usize]) -> Layout {
        let last = sizes.len() - 1;
        let layers = sizes.iter().enumerate().map(|(l, &n)| if l == last { ring(n) } else { grid(n) }).collect();
        Layout { layers }
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
    let side = (n as f64).sqrt().round() as usize;
    assert_eq!(side * side, n, "a grid layer needs a square width, got {n}");
    let ticks = linspace(1.0 / (2 * side) as f64, 1.0 - 1.0 / (2 * side) as f64, side);
    let mut out = Vec::with_capacity(n);
    for &y in &ticks {
        for &x in &ticks {
            out.push([x as f32, y as f32]);
        }
    }
    out
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
        let l = Layout::study(&[784, 100, 100, 10]);
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
}
