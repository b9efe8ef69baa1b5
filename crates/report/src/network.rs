//! Fig. 2: a network drawn layer by layer with its circuit's edges on top, each
//! hidden layer seen from above, the input as a heat map.

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
/// Alpha of an edge outside the circuit, relative to its magnitude's.
const BACKGROUND_ALPHA: f64 = 0.12;

const CIRCUIT: RGBColor = RGBColor(230, 120, 0);
const POSITIVE: RGBColor = RGBColor(31, 90, 200);
const NEGATIVE: RGBColor = RGBColor(210, 40, 40);
const DEAD: RGBColor = RGBColor(170, 170, 170);

/// One network and one circuit, as Fig. 2 draws them.
#[derive(Debug, Clone, Copy)]
pub struct NetworkView<'a> {
    /// The figure's title.
    pub title: &'a str,
    /// `coords[l]`: neuron layer `l`'s `[x, y]` in the unit square (input first).
    pub coords: &'a [Vec<[f32; 2]>],
    /// `weights[l]`: the matrix from layer `l` to `l + 1`, row-major
    /// `[coords[l + 1].len(), coords[l].len()]`, as `nn.Linear` stores it.
    pub weights: &'a [&'a [f32]],
    /// `circuit[h]`: the circuit's neurons of hidden layer `h` (0-based).
    pub circuit: &'a [Vec<usize>],
    /// `dead[h]`: the neurons of hidden layer `h` whose patch changes nothing.
    pub dead: &'a [Vec<usize>],
    /// `effects[h][i]`: neuron `i`'s patching effect (baseline minus score).
    pub effects: &'a [Vec<f64>],
    /// The input image's rows and columns: the input layer is drawn as a
    /// heat map of each pixel's Σ|w| to the circuit's first-layer neurons.
    pub image: (usize, usize),
}

impl NetworkView<'_> {
    fn check(&self, stem: &Path) -> Result<(), ReportError> {
        let (c, w) = (self.coords, self.weights);
        let hidden = c.len().saturating_sub(2);
        let bad = |what: String| Err(ReportError::Data(format!("network figure {}: {what}", stem.display())));
        if c.len() < 3
            || c.len() != w.len() + 1
            || w.iter().enumerate().any(|(l, w)| w.len() != c[l].len() * c[l + 1].len())
        {
            return bad(format!(
                "{} coordinate layers of {:?} neurons do not fit {} weight matrices of {:?} entries (at least one hidden layer)",
                c.len(),
                c.iter().map(Vec::len).collect::<Vec<_>>(),
                w.len(),
                w.iter().map(|w| w.len()).collect::<Vec<_>>()
            ));
        }
        for (name, sets) in [("circuit", self.circuit), ("dead", self.dead)] {
            if sets.len() != hidden || sets.iter().enumerate().any(|(h, s)| s.iter().any(|&i| i >= c[h + 1].len())) {
                return bad(format!("the {name} neurons do not fit {hidden} hidden layers"));
            }
        }
        if self.effects.len() != hidden
            || self
                .effects
                .iter()
                .enumerate()
                .any(|(h, e)| e.len() != c[h + 1].len() || e.iter().any(|x| !x.is_finite()))
        {
            return bad(format!("the effects are not {hidden} layers of finite numbers, one per neuron"));
        }
        if self.image.0 * self.image.1 != c[0].len() {
            return bad(format!("a {}x{} image does not have the {} inputs", self.image.0, self.image.1, c[0].len()));
        }
        Ok(())
    }
}

/// Fig. 2: the hidden and output layers on their coordinates, stacked
/// obliquely, with edges coloured by sign (blue positive, red negative) and
/// alpha by magnitude, the circuit's edges drawn over the rest; below, the
/// input as a heat map of what the circuit reads, and each hidden layer from
/// above with every neuron's index, its effect as colour, the circuit's
/// neurons outlined and dead ones greyed.
pub fn network_figure(stem: &Path, view: &NetworkView<'_>) -> Result<Vec<PathBuf>, ReportError> {
    view.check(stem)?;
    render!(stem, (1500, 1300), draw_network, view)
}

fn project(row: usize, c: [f32; 2]) -> (f64, f64) {
    let (x, y) = (c[0] as f64, c[1] as f64);
    (x + DEPTH * y, row as f64 + DEPTH * y)
}

/// `[l][i]`: whether neuron `i` of layer `l` is in the circuit; inputs and
/// outputs always belong.
fn flags(coords: &[Vec<[f32; 2]>], sets: &[Vec<usize>], edge_value: bool) -> Vec<Vec<bool>> {
    let last = coords.len() - 1;
    coords
        .iter()
        .enumerate()
        .map(|(l, ns)| {
            if l == 0 || l == last {
                return vec![edge_value; ns.len()];
            }
            let mut v = vec![false; ns.len()];
            sets[l - 1].iter().for_each(|&i| v[i] = true);
            v
        })
        .collect()
}

fn draw_network<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, view: &NetworkView<'_>) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(view.title, ("sans-serif", 26))?;
    let (top, rest) = root.split_vertically(800);
    let (panels, legend) = rest.split_vertically(420);
    let in_circuit = flags(view.coords, view.circuit, true);
    let dead = flags(view.coords, view.dead, false);
    draw_stack(&top, view, &in_circuit, &dead)?;
    let hidden = view.coords.len() - 2;
    let areas = panels.split_evenly((1, hidden + 1));
    draw_input(&areas[0], view)?;
    for (h, area) in areas[1..].iter().enumerate() {
        draw_layer(area, view, h, &in_circuit[h + 1], &dead[h + 1])?;
    }
    legend.draw(&Text::new(
        "Orange: the circuit's neurons (a ring: dead, kept only to fill K); grey ×: dead neurons. Edges: blue positive, red negative, alpha by |w|; the circuit's edges drawn strong, over the rest.",
        (20, 15),
        ("sans-serif", 15).into_font(),
    ))?;
    legend.draw(&Text::new(
        "Below, each hidden layer from above: every neuron's index, its patching effect (baseline − score) as colour, the circuit's neurons outlined.",
        (20, 38),
        ("sans-serif", 15).into_font(),
    ))?;
    Ok(())
}

/// The hidden and output layers stacked obliquely, hidden layer 1 at the bottom.
fn draw_stack<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    view: &NetworkView<'_>,
    in_circuit: &[Vec<bool>],
    dead: &[Vec<bool>],
) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    let (coords, n_layers) = (view.coords, view.coords.len());
    let xs = coords[1..].iter().enumerate().flat_map(|(r, ns)| ns.iter().map(move |&c| project(r, c).0));
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .build_cartesian_2d(lo - 0.04..hi + 0.04, -0.1f64..(n_layers - 2) as f64 + DEPTH + 0.15)?;
    let row = |l: usize| l - 1;
    // Background edges, then the circuit's, each faint to strong.
    let mut background = Vec::new();
    let mut strong = Vec::new();
    for (l, weight) in view.weights.iter().enumerate().skip(1) {
        let max = weight.iter().fold(0f32, |m, w| m.max(w.abs())) as f64;
        if max == 0.0 {
            continue;
        }
        let (n_in, n_out) = (coords[l].len(), coords[l + 1].len());
        for o in 0..n_out {
            for i in 0..n_in {
                let w = weight[o * n_in + i] as f64;
                let alpha = w.abs() / max;
                if alpha < MIN_ALPHA {
                    continue;
                }
                let colour = if w > 0.0 { POSITIVE } else { NEGATIVE };
                let ends = vec![project(row(l), coords[l][i]), project(row(l + 1), coords[l + 1][o])];
                if in_circuit[l][i] && in_circuit[l + 1][o] {
                    strong.push((alpha, PathElement::new(ends, colour.mix(alpha.max(0.15)).stroke_width(2))));
                } else {
                    background
                        .push((alpha, PathElement::new(ends, colour.mix(alpha * BACKGROUND_ALPHA).stroke_width(1))));
                }
            }
        }
    }
    for mut edges in [background, strong] {
        edges.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(edges.into_iter().map(|e| e.1))?;
    }
    for (l, neurons) in coords.iter().enumerate().skip(1) {
        let out = l + 1 == n_layers;
        for (i, &c) in neurons.iter().enumerate() {
            let p = project(row(l), c);
            if out {
                chart.draw_series([Circle::new(p, 6, BLACK.filled())])?;
                chart.draw_series([Text::new(i.to_string(), (p.0 + 0.008, p.1 + 0.02), ("sans-serif", 16))])?;
            } else if in_circuit[l][i] {
                let marker = if dead[l][i] {
                    Circle::new(p, 5, CIRCUIT.stroke_width(2))
                } else {
                    Circle::new(p, 5, CIRCUIT.filled())
                };
                chart.draw_series([marker])?;
                chart.draw_series([Text::new(i.to_string(), (p.0 + 0.006, p.1 + 0.015), ("sans-serif", 13))])?;
            } else if dead[l][i] {
                chart.draw_series([Cross::new(p, 3, DEAD.stroke_width(1))])?;
            } else {
                chart.draw_series([Circle::new(p, 3, RGBColor(110, 110, 110).filled())])?;
            }
        }
        chart.draw_series([Text::new(
            if out { "outputs".to_string() } else { format!("hidden layer {l}") },
            (lo - 0.035, row(l) as f64 - 0.06),
            ("sans-serif", 15),
        )])?;
    }
    Ok(())
}

/// A square panel with a caption, its unit square mapped onto it (y down).
fn unit_panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
) -> Result<
    ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>,
    DrawError,
>
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.dim_in_pixel();
    let side = w.min(h.saturating_sub(40)) as i32;
    let pad = (w as i32 - side) / 2;
    let area = area.margin(5, 5, pad.max(5), pad.max(5));
    Ok(ChartBuilder::on(&area)
        .caption(caption, ("sans-serif", 15))
        .margin(5)
        .build_cartesian_2d(0f64..1.0, 1f64..0.0)?)
}

/// The input as a heat map: each pixel's Σ|w| to the circuit's neurons of hidden layer 1.
fn draw_input<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, view: &NetworkView<'_>) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    let (rows, cols) = view.image;
    let w1 = view.weights[0];
    let mut heat = vec![0f64; rows * cols];
    for &j in &view.circuit[0] {
        for (p, h) in heat.iter_mut().enumerate() {
            *h += w1[j * rows * cols + p].abs() as f64;
        }
    }
    let max = heat.iter().cloned().fold(0.0, f64::max);
    let mut chart = unit_panel(area, "input: Σ|w| to the circuit's layer-1 neurons")?;
    let (dx, dy) = (1.0 / cols as f64, 1.0 / rows as f64);
    chart.draw_series(heat.iter().enumerate().map(|(p, &v)| {
        let (r, c) = ((p / cols) as f64, (p % cols) as f64);
        let t = if max > 0.0 { v / max } else { 0.0 };
        // White to dark violet.
        let shade = |full: f64, dark: f64| (full + (dark - full) * t) as u8;
        let colour = RGBColor(shade(255.0, 60.0), shade(255.0, 20.0), shade(255.0, 110.0));
        Rectangle::new([(c * dx, r * dy), ((c + 1.0) * dx, (r + 1.0) * dy)], colour.filled())
    }))?;
    Ok(())
}

/// Hidden layer `h` from above: index labels, effect as colour, circuit outlined, dead greyed.
fn draw_layer<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    view: &NetworkView<'_>,
    h: usize,
    in_circuit: &[bool],
    dead: &[bool],
) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    let neurons = &view.coords[h + 1];
    let effects = &view.effects[h];
    let max = effects.iter().fold(0f64, |m, e| m.max(e.abs()));
    let mut chart = unit_panel(area, &format!("hidden layer {}: effect, circuit outlined", h + 1))?;
    // Half the smallest spacing along either axis, as a cell's half-width.
    let spacing = |axis: usize| {
        let mut v: Vec<f64> = neurons.iter().map(|c| c[axis] as f64).collect();
        v.sort_by(f64::total_cmp);
        v.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 1e-6).fold(0.5, f64::min)
    };
    let half = 0.48 * spacing(0).min(spacing(1));
    let font = ((half * 2.0 * 300.0) as u32).clamp(7, 13);
    for (i, c) in neurons.iter().enumerate() {
        let (x, y) = (c[0] as f64, c[1] as f64);
        let t = if max > 0.0 { effects[i] / max } else { 0.0 };
        let fill = if dead[i] {
            RGBColor(235, 235, 235)
        } else if t >= 0.0 {
            RGBColor(255, (255.0 - 135.0 * t) as u8, (255.0 - 255.0 * t) as u8)
        } else {
            RGBColor((255.0 + 224.0 * t) as u8, (255.0 + 165.0 * t) as u8, 255)
        };
        let cell = [(x - half, y - half), (x + half, y + half)];
        chart.draw_series([Rectangle::new(cell, fill.filled())])?;
        if in_circuit[i] {
            chart.draw_series([Rectangle::new(cell, BLACK.stroke_width(2))])?;
        }
        let colour = if dead[i] { DEAD } else { BLACK };
        chart.draw_series([Text::new(
            i.to_string(),
            (x - half * 0.8, y - half * 0.6),
            ("sans-serif", font).into_font().color(&colour),
        )])?;
    }
    Ok(())
}
