use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{DrawError, ReportError};

/// Edges weaker than this fraction of their layer's largest |weight| are not
/// drawn (they would be invisible at this alpha anyway).
const MIN_ALPHA: f64 = 0.02;
/// The oblique projection's depth factor: a grid's second axis is drawn
/// slanted, so that the layers stack like sheets.
const DEPTH: f64 = 0.35;

/// Fig. 2: the network on its neuron coordinates, layers stacked (input at
/// the bottom), edges coloured by sign (blue positive, red negative) with
/// alpha by magnitude, circuit neurons (`circuit[h]` for hidden layer `h`)
/// highlighted and their edges drawn stronger.
///
/// `coords[l]` holds neuron layer `l`'s `[x, y]` in the unit square (input
/// first); `weights[l]` is the matrix from layer `l` to `l + 1`, row-major
/// `[coords[l + 1].len(), coords[l].len()]`, as `nn.Linear` stores it.
pub fn network_figure(
    stem: &Path,
    title: &str,
    coords: &[Vec<[f32; 2]>],
    weights: &[&[f32]],
    circuit: &[Vec<usize>],
) -> Result<Vec<PathBuf>, ReportError> {
    if coords.len() != weights.len() + 1
        || weights.iter().enumerate().any(|(l, w)| w.len() != coords[l].len() * coords[l + 1].len())
    {
        return Err(ReportError::Data(format!(
            "network figure {}: {} coordinate layers of {:?} neurons do not fit {} weight matrices of {:?} entries",
            stem.display(),
            coords.len(),
            coords.iter().map(Vec::len).collect::<Vec<_>>(),
            weights.len(),
            weights.iter().map(|w| w.len()).collect::<Vec<_>>()
        )));
    }
    render!(stem, (900, 900), draw_network, title, coords, weights, circuit)
}

fn project(l: usize, c: [f32; 2]) -> (f64, f64) {
    let (x, y) = (c[0] as f64, c[1] as f64);
    (x + DEPTH * y, l as f64 + DEPTH * y)
}

/// `[l][i]`: whether neuron `i` of layer `l` is in the circuit; inputs and
/// outputs always belong.
fn circuit_flags(coords: &[Vec<[f32; 2]>], circuit: &[Vec<usize>]) -> Vec<Vec<bool>> {
    let n_layers = coords.len();
    coords
        .iter()
        .enumerate()
        .map(|(l, ns)| {
            if l == 0 || l == n_layers - 1 {
                vec![true; ns.len()]
            } else {
                let mut v = vec![false; ns.len()];
                for &i in circuit.get(l - 1).map(|v| v.as_slice()).unwrap_or(&[]) {
                    if i < v.len() {
                        v[i] = true;
                    }
                }
                v
            }
        })
        .collect()
}

fn draw_network<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    coords: &[Vec<[f32; 2]>],
    weights: &[&[f32]],
    circuit: &[Vec<usize>],
) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let n_layers = coords.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(10)
        .build_cartesian_2d(-0.05f64..1.0 + DEPTH + 0.05, -0.1f64..(n_layers - 1) as f64 + DEPTH + 0.1)?;
    let in_circuit = circuit_flags(coords, circuit);
    for (l, weight) in weights.iter().enumerate() {
        let max = weight.iter().fold(0f32, |m, w| m.max(w.abs())) as f64;
        if max == 0.0 {
            continue;
        }
        let (n_in, n_out) = (coords[l].len(), coords[l + 1].len());
        let mut edges = Vec::new();
        for o in 0..n_out {
            for i in 0..n_in {
                let w = weight[o * n_in + i] as f64;
                let mut alpha = w.abs() / max;
                if alpha < MIN_ALPHA {
                    continue;
                }
                if !(in_circuit[l][i] && in_circuit[l + 1][o]) {
                    alpha *= 0.25;
                }
                let c = if w > 0.0 { RGBColor(31, 90, 200) } else { RGBColor(210, 40, 40) };
                edges.push((
                    alpha,
                    PathElement::new(
                        vec![project(l, coords[l][i]), project(l + 1, coords[l + 1][o])],
                        c.mix(alpha.min(1.0)).stroke_width(1),
                    ),
                ));
            }
        }
        // Faint edges first, so strong ones stay on top.
        edges.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(edges.into_iter().map(|e| e.1))?;
    }
    for (l, neurons) in coords.iter().enumerate() {
        let (hidden, out) = (l > 0 && l + 1 < n_layers, l + 1 == n_layers);
        chart.draw_series(neurons.iter().enumerate().map(|(i, &c)| {
            let p = project(l, c);
            if out {
                Circle::new(p, 5, BLACK.filled())
            } else if hidden && in_circuit[l][i] {
                Circle::new(p, 5, RGBColor(255, 140, 0).filled())
            } else if hidden {
                Circle::new(p, 2, RGBColor(150, 150, 150).filled())
            } else {
                Circle::new(p, 1, RGBColor(190, 190, 190).filled())
            }
        }))?;
        if out {
            chart.draw_series(neurons.iter().enumerate().map(|(i, &c)| {
                let (x, y) = project(l, c);
                Text::new(i.to_string(), (x + 0.012, y + 0.012), ("sans-serif", 14).into_font())
            }))?;
        }
    }
    chart.draw_series([Text::new(
        "orange: circuit neurons; blue/red: positive/negative weights, alpha by |w|",
        (0.0, -0.07),
        ("sans-serif", 14).into_font(),
    )])?;
    Ok(())
}
