//! The study's charts (plotters): bars, lines, scatters with intervals, strips
//! across seeds; PNG and SVG alike.

use std::path::{Path, PathBuf};

use modcirc_metrics::Summary;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{DrawError, ReportError};

/// Colours for up to ten series (Tableau 10), in a fixed order.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One point with 95% intervals on both axes.
#[derive(Debug, Clone)]
pub struct Point {
    /// The series (model) it belongs to: the legend names each colour by
    /// its first point's label.
    pub label: String,
    /// Mean and interval along x.
    pub x: Summary,
    /// Mean and interval along y.
    pub y: Summary,
    /// Colour index into the palette (the same model, the same colour).
    pub color: usize,
    /// Drawn hollow: a value reported by the paper rather than measured here.
    pub reference: bool,
    /// Values drawn as small dots beside the point (each seed's, where the
    /// point is their mean).
    pub dots: Vec<f64>,
}

/// One panel of a scatter chart.
#[derive(Debug, Clone)]
pub struct ScatterPanel {
    /// Its title.
    pub title: String,
    /// Its points.
    pub points: Vec<Point>,
    /// Where x can lie at all (sparsity: 0 to 1); the axis never leaves it.
    pub x_domain: Option<(f64, f64)>,
    /// The y axis holds every interval and dot whole (otherwise an
    /// interval far wider than the points' spread is cut at the axis).
    pub whole_intervals: bool,
}

/// Points with interval bars, one panel per entry of `panels`, side by side.
/// With `log_y` the y axis is logarithmic (for timings spanning decades).
pub fn scatter_ci(
    stem: &Path,
    x_label: &str,
    y_label: &str,
    panels: &[ScatterPanel],
    log_y: bool,
) -> Result<Vec<PathBuf>, ReportError> {
    let finite = |v: &Summary| [v.mean, v.lo, v.hi].iter().all(|x| x.is_finite());
    check_data(
        stem,
        "scatter panel",
        panels.iter().map(|p| (&p.title, p.points.len(), p.points.iter().all(|q| finite(&q.x) && finite(&q.y)))),
    )?;
    let size = (560 * panels.len() as u32 + LEGEND_WIDTH, 480);
    render!(stem, size, draw_scatter, x_label, y_label, panels, log_y)
}

/// Refuses, before any drawing, a chart with no panel, a panel with nothing
/// to draw, or a value that is not finite: plotters cannot place an axis on
/// an empty or NaN range (on an empty one it never returns). `panels` holds
/// each panel's (title, how many items, whether all are finite).
pub(crate) fn check_data<'a>(
    stem: &Path,
    kind: &str,
    panels: impl ExactSizeIterator<Item = (&'a String, usize, bool)>,
) -> Result<(), ReportError> {
    let fail = |why: String| Err(ReportError::Data(format!("{}: {why}", stem.display())));
    if panels.len() == 0 {
        return fail(format!("no {kind} to draw"));
    }
    for (title, n, finite) in panels {
        if n == 0 {
            return fail(format!("{kind} {title:?} has nothing to draw"));
        }
        if !finite {
            return fail(format!("{kind} {title:?} holds a value that is not finite"));
        }
    }
    Ok(())
}

/// An axis range covering every mean and the intervals, except that an
/// interval reaching further than the spread of the means on either side is
/// cut off at the edge (one implausible interval must not squash the rest).
pub(crate) fn axis_range(values: impl Iterator<Item = (f64, f64, f64)> + Clone) -> (f64, f64) {
    let (mlo, mhi) = values.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v.0), b.max(v.0)));
    let spread = (mhi - mlo).max(mhi.abs() * 1e-2).max(1e-9);
    let (lo, hi) = values.fold((mlo, mhi), |(a, b), v| (a.min(v.1.max(mlo - spread)), b.max(v.2.min(mhi + spread))));
    padded(lo, hi)
}

pub(crate) fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(hi.abs() * 1e-3).max(1e-9);
    (lo - 0.08 * span, hi + 0.08 * span)
}

fn draw_scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    x_label: &str,
    y_label: &str,
    panels: &[ScatterPanel],
    log_y: bool,
) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let ty = |v: f64| if log_y { v.max(1e-12).log10() } else { v };
    let (width, _) = root.dim_in_pixel();
    let (plots, legend) = root.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    let all: Vec<Point> = panels.iter().flat_map(|p| p.points.iter().cloned()).collect();
    draw_legend(&legend, &all)?;
    let areas = plots.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        let (mut x0, mut x1) = axis_range(panel.points.iter().map(|p| (p.x.mean, p.x.lo, p.x.hi)));
        if let Some((lo, hi)) = panel.x_domain {
            (x0, x1) = (x0.max(lo), x1.min(hi));
        }
        let (y0, y1) = if panel.whole_intervals {
            let ys =
                panel.points.iter().flat_map(|p| [p.y.mean, p.y.lo, p.y.hi].into_iter().chain(p.dots.iter().copied()));
            let (lo, hi) = ys.map(ty).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
            padded(lo, hi)
        } else {
            axis_range(panel.points.iter().map(|p| (ty(p.y.mean), ty(p.y.lo), ty(p.y.hi))))
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(axis(x0, x1, false), axis(y0, y1, log_y))?;
        let fmt_y = |v: &f64| if log_y { short(10f64.powf(*v)) } else { format!("{v:.3}") };
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&|v| format!("{v:.3}"))
            .y_label_formatter(&fmt_y)
            .label_style(("sans-serif", 13))
            .draw()?;
        for p in &panel.points {
            let c = PALETTE[p.color % PALETTE.len()];
            let (x, y) = (p.x.mean, ty(p.y.mean));
            chart.draw_series([
                PathElement::new(vec![(p.x.lo.max(x0), y), (p.x.hi.min(x1), y)], c.stroke_width(2)),
                PathElement::new(vec![(x, ty(p.y.lo)), (x, ty(p.y.hi))], c.stroke_width(2)),
            ])?;
            let style = if p.reference { c.stroke_width(2) } else { c.filled() };
            chart.draw_series([Circle::new((x, y), 6, style)])?;
            chart.draw_series(p.dots.iter().map(|&d| Circle::new((x, ty(d)), 3, c.stroke_width(1))))?;
        }
    }
    Ok(())
}

/// Pixels to the right of the panels for the shared legend.
const LEGEND_WIDTH: u32 = 150;

/// The legend, beside the panels rather than a label per point: the
/// penalised models sit within a few thousandths of sparsity of each other,
/// and labels (or a legend inside a panel) would cover points.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, points: &[Point]) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    let mut rows: Vec<(String, ShapeStyle)> = legend_entries(points)
        .into_iter()
        .map(|(color, name)| (name, PALETTE[color % PALETTE.len()].filled()))
        .collect();
    if points.iter().any(|p| p.reference) {
        let grey = PALETTE[7];
        rows.push(("filled: this run".into(), grey.filled()));
        rows.push(("hollow: the paper".into(), grey.stroke_width(2)));
    }
    let font = ("sans-serif", 13).into_font();
    for (i, (name, style)) in rows.into_iter().enumerate() {
        let y = 60 + 22 * i as i32;
        area.draw(&Circle::new((14, y), 6, style))?;
        area.draw(&Text::new(name, (28, y - 7), font.clone()))?;
    }
    Ok(())
}

/// One legend entry per colour, named by the first point of that colour.
fn legend_entries(points: &[Point]) -> Vec<(usize, String)> {
    let mut entries: Vec<(usize, String)> = Vec::new();
    for p in points {
        if !entries.iter().any(|(c, _)| *c == p.color) {
            entries.push((p.color, p.label.clone()));
        }
    }
    entries
}

/// A bar: stacked segments (name, value) and an optional interval on the total.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Below the bar.
    pub label: String,
    /// Stacked segments, bottom first: (name, height).
    pub segments: Vec<(String, f64)>,
    /// A whisker from lo to hi.
    pub interval: Option<(f64, f64)>,
}

/// A bar chart with stacked segments and interval whiskers.
pub fn bar_chart(stem: &Path, title: &str, y_label: &str, bars: &[Bar]) -> Result<Vec<PathBuf>, ReportError> {
    let finite = |b: &Bar| {
        b.segments.iter().all(|s| s.1.is_finite()) && b.interval.is_none_or(|(lo, hi)| lo.is_finite() && hi.is_finite())
    };
    let title_owned = title.to_string();
    check_data(stem, "bar chart", std::iter::once((&title_owned, bars.len(), bars.iter().all(finite))))?;
    // Wide enough for each bar's label: about 110 pixels a bar.
    let width = (bars.len() as u32).saturating_mul(110).saturating_add(120).clamp(720, 4000);
    render!(stem, (width, 480), draw_bars, title, y_label, bars)
}

/// The label of the category at integer position `v` of a categorical x
/// axis; nothing between categories.
pub(crate) fn category_label(labels: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() < 1e-6 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// The highest bar or whisker, above 0.
fn bars_top(bars: &[Bar]) -> f64 {
    bars.iter()
        .map(|b| b.interval.map(|i| i.1).unwrap_or(0.0).max(b.segments.iter().map(|s| s.1).sum()))
        .fold(0.0, f64::max)
        .max(1e-12)
}

/// Every segment name, in order of first appearance.
fn segment_names(bars: &[Bar]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for b in bars {
        for (s, _) in &b.segments {
            if !names.contains(s) {
                names.push(s.clone());
            }
        }
    }
    names
}

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    bars: &[Bar],
) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let top = bars_top(bars) * 1.15;
    let n = bars.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0.0..top)?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let fmt_x = |v: &f64| category_label(&labels, *v);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&fmt_x)
        .y_desc(y_label)
        .label_style(("sans-serif", 13))
        .draw()?;
    let names = segment_names(bars);
    for (si, name) in names.iter().enumerate() {
        let c = PALETTE[si % PALETTE.len()];
        let rects: Vec<_> = bars
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let pos = b.segments.iter().position(|(s, _)| s == name)?;
                let below: f64 = b.segments[..pos].iter().map(|s| s.1).sum();
                let x = i as f64;
                Some(Rectangle::new([(x - 0.3, below), (x + 0.3, below + b.segments[pos].1)], c.filled()))
            })
            .collect();
        let series = chart.draw_series(rects)?;
        if names.len() > 1 {
            series.label(name.clone()).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
    }
    for (i, b) in bars.iter().enumerate() {
        if let Some((lo, hi)) = b.interval {
            let x = i as f64;
            chart.draw_series([
                PathElement::new(vec![(x, lo), (x, hi)], BLACK.stroke_width(2)),
                PathElement::new(vec![(x - 0.1, lo), (x + 0.1, lo)], BLACK.stroke_width(2)),
                PathElement::new(vec![(x - 0.1, hi), (x + 0.1, hi)], BLACK.stroke_width(2)),
            ])?;
        }
    }
    if names.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    Ok(())
}

/// A named curve.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its legend entry.
    pub name: String,
    /// (x, y), in order.
    pub points: Vec<(f64, f64)>,
    /// Where given, the (low, high) of an interval at each point, shaded
    /// in the series' colour.
    pub band: Option<Vec<(f64, f64)>>,
}

/// One panel of a line chart.
#[derive(Debug, Clone)]
pub struct LinePanel {
    /// Its title.
    pub title: String,
    /// The x axis' label.
    pub x_label: String,
    /// The y axis' label.
    pub y_label: String,
    /// Its curves.
    pub series: Vec<Series>,
    /// A log10 x axis.
    pub log_x: bool,
    /// A log10 y axis.
    pub log_y: bool,
    /// Both axes over [0, 1] whatever the data (an ROC curve), instead of
    /// the data's range.
    pub unit_square: bool,
    /// Where the legend sits: where the curves are not.
    pub legend: Legend,
}

/// A legend's corner of the panel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Legend {
    /// The middle (plotters' own default).
    #[default]
    Middle,
    /// The upper left: for curves that rise from the lower left.
    UpperLeft,
    /// The lower right: for curves that fall or sit high on the left.
    LowerRight,
}

/// A linear f64 axis whose ticks are chosen, not plotters' even steps.
#[derive(Clone)]
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }
    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// An axis over `[lo, hi]` in drawn units, with its ticks. On a log axis
/// (values drawn as their log10) the ticks sit at 1, 2 and 5 of each decade,
/// where a reader expects them, rather than at plotters' even steps of the
/// logarithm (0.316, 3.16, …).
fn axis(lo: f64, hi: f64, log: bool) -> Ticked {
    let inner: RangedCoordf64 = (lo..hi).into();
    let ticks = if log { log_ticks(lo, hi) } else { inner.key_points(8) };
    Ticked { inner, ticks }
}

/// The log10 of every 1, 2 and 5 times a power of ten within `[lo, hi]`
/// (themselves log10s); where that leaves fewer than two, every 1-9, and
/// where it gives more than twelve, the powers of ten alone.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let within = |mantissas: &[f64]| -> Vec<f64> {
        let (first, last) = (lo.floor() as i32 - 1, hi.ceil() as i32);
        (first..=last)
            .flat_map(|e| mantissas.iter().map(move |m| m.log10() + e as f64))
            .filter(|t| (lo - 1e-9..=hi + 1e-9).contains(t))
            .collect()
    };
    let ticks = within(&[1.0, 2.0, 5.0]);
    if ticks.len() < 2 {
        within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    } else if ticks.len() > 12 {
        within(&[1.0])
    } else {
        ticks
    }
}

/// A tick label with at most three significant digits and no trailing zeros.
pub(crate) fn short(v: f64) -> String {
    let digits = (2 - v.abs().max(1e-12).log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    // A value that rounds to zero from below prints as "-0".
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// Curves, one panel per entry, side by side; series share colours across panels.
pub fn line_chart(stem: &Path, panels: &[LinePanel]) -> Result<Vec<PathBuf>, ReportError> {
    check_data(
        stem,
        "line panel",
        panels.iter().map(|p| {
            let points = p.series.iter().map(|s| s.points.len()).sum();
            let finite = p.series.iter().flat_map(|s| &s.points).all(|(x, y)| x.is_finite() && y.is_finite())
                && p.series.iter().all(|s| {
                    s.band.as_ref().is_none_or(|b| {
                        b.len() == s.points.len() && b.iter().all(|(l, h)| l.is_finite() && h.is_finite())
                    })
                });
            (&p.title, points, finite)
        }),
    )?;
    render!(stem, (480 * panels.len() as u32, 420), draw_lines, panels)
}

fn draw_lines<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, panels: &[LinePanel]) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        let ty = |v: f64| if panel.log_y { v.max(1e-12).log10() } else { v };
        let tx = |v: f64| if panel.log_x { v.max(1e-12).log10() } else { v };
        let all = panel.series.iter().flat_map(|s| s.points.iter());
        let (x0, x1) =
            all.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(tx(p.0)), b.max(tx(p.0))));
        let bands = panel.series.iter().flat_map(|s| s.band.iter().flatten().flat_map(|&(l, h)| [l, h]));
        let (y0, y1) = all
            .map(|p| p.1)
            .chain(bands)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(ty(y)), b.max(ty(y))));
        let (y0, y1) = padded(y0, y1);
        let (x0, x1, y0, y1) = if panel.unit_square { (0.0, 1.0, 0.0, 1.0) } else { (x0, x1, y0, y1) };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(axis(x0, x1.max(x0 + 1.0), panel.log_x), axis(y0, y1, panel.log_y))?;
        let fmt_y = |v: &f64| if panel.log_y { short(10f64.powf(*v)) } else { format!("{v:.3}") };
        chart
            .configure_mesh()
            .x_desc(&panel.x_label)
            .y_desc(&panel.y_label)
            .y_label_formatter(&fmt_y)
            .x_label_formatter(&|v| if panel.log_x { short(10f64.powf(*v)) } else { short(*v) })
            .label_style(("sans-serif", 12))
            .draw()?;
        for (i, s) in panel.series.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            if let Some(band) = &s.band {
                let upper = s.points.iter().zip(band).map(|(p, b)| (tx(p.0), ty(b.1)));
                let lower = s.points.iter().zip(band).rev().map(|(p, b)| (tx(p.0), ty(b.0)));
                chart
                    .draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), c.mix(0.18))))?;
            }
            chart
                .draw_series(LineSeries::new(s.points.iter().map(|&(x, y)| (tx(x), ty(y))), c.stroke_width(2)))?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(match panel.legend {
                Legend::Middle => SeriesLabelPosition::MiddleMiddle,
                Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
                Legend::LowerRight => SeriesLabelPosition::LowerRight,
            })
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axes_tick_at_one_two_and_five() {
        let labels = |lo: f64, hi: f64| -> Vec<String> {
            log_ticks(lo.log10(), hi.log10()).iter().map(|t| short(10f64.powf(*t))).collect()
        };
        assert_eq!(labels(0.3, 40.0), ["0.5", "1", "2", "5", "10", "20"]);
        assert_eq!(labels(0.001, 0.012), ["0.001", "0.002", "0.005", "0.01"]);
        // Inside one step of 1-2-5: every digit.
        assert_eq!(labels(2.5, 4.5), ["3", "4"]);
        // Twelve decades: the powers of ten.
        assert_eq!(labels(1e-6, 1e6).len(), 13);
        assert!(labels(1e-6, 1e6).iter().all(|l| l.trim_start_matches("0.").trim_start_matches('0').starts_with('1')));
    }

    #[test]
    fn empty_or_non_finite_data_is_refused_before_drawing() {
        let dir = std::env::temp_dir().join(format!("modcirc-charts-empty-{}", std::process::id()));
        let stem = dir.join("chart");
        let at = |mean: f64| Summary { mean, lo: mean, hi: mean, n: 1 };
        let point =
            |y: f64| Point { label: "a".into(), x: at(0.5), y: at(y), color: 0, reference: false, dots: vec![] };
        let panel =
            |points: Vec<Point>| ScatterPanel { title: "p".into(), points, x_domain: None, whole_intervals: false };
        let line = |points: Vec<(f64, f64)>| LinePanel {
            title: "l".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series { name: "s".into(), points, band: None }],
            log_x: false,
            log_y: false,
            unit_square: false,
            legend: Legend::Middle,
        };
        let bar = |v: f64| Bar { label: "b".into(), segments: vec![("s".into(), v)], interval: None };
        let errors = [
            scatter_ci(&stem, "x", "y", &[], false).unwrap_err(),
            scatter_ci(&stem, "x", "y", &[panel(vec![])], false).unwrap_err(),
            scatter_ci(&stem, "x", "y", &[panel(vec![point(f64::NAN)])], false).unwrap_err(),
            line_chart(&stem, &[]).unwrap_err(),
            line_chart(&stem, &[line(vec![])]).unwrap_err(),
            line_chart(&stem, &[line(vec![(1.0, f64::INFINITY)])]).unwrap_err(),
            bar_chart(&stem, "t", "y", &[]).unwrap_err(),
            bar_chart(&stem, "t", "y", &[bar(f64::NAN)]).unwrap_err(),
        ];
        for e in errors {
            assert!(matches!(&e, ReportError::Data(m) if m.contains("chart")), "{e}");
        }
        assert!(!dir.exists(), "nothing is written for refused data");
        // The same data with a value in it draws.
        scatter_ci(&stem, "x", "y", &[panel(vec![point(1.0)])], false).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tick_labels_keep_three_significant_digits_and_drop_trailing_zeros() {
        for (v, want) in
            [(0.001, "0.001"), (0.1, "0.1"), (2.5, "2.5"), (100.0, "100"), (31.6228, "31.6"), (1.0, "1"), (-1e-17, "0")]
        {
            assert_eq!(short(v), want, "{v}");
        }
    }
}
