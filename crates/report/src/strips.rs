//! Strips: a mean and interval over faint points, per group (Fig. 10).

use std::path::{Path, PathBuf};

use modcirc_metrics::Summary;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::charts::{axis_range, category_label, check_data, short, PALETTE};
use crate::{DrawError, ReportError};

/// One group of a strip chart: a mean with its interval, over faint points.
#[derive(Debug, Clone)]
pub struct Strip {
    /// Below the axis.
    pub label: String,
    /// Palette index.
    pub color: usize,
    /// Mean and interval.
    pub summary: Summary,
    /// The values the summary is over (each seed, say), drawn faint.
    pub points: Vec<f64>,
}

/// One panel of a strip chart.
#[derive(Debug, Clone)]
pub struct StripPanel {
    /// Its title.
    pub title: String,
    /// The y axis' label.
    pub y_label: String,
    /// Its groups, left to right.
    pub strips: Vec<Strip>,
}

/// Groups side by side, each a mean and interval drawn over its values as
/// faint points; panels in a grid of `columns`.
pub fn strip_chart(stem: &Path, panels: &[StripPanel], columns: usize) -> Result<Vec<PathBuf>, ReportError> {
    let finite =
        |s: &Strip| [s.summary.mean, s.summary.lo, s.summary.hi].iter().chain(&s.points).all(|v| v.is_finite());
    check_data(stem, "strip panel", panels.iter().map(|p| (&p.title, p.strips.len(), p.strips.iter().all(finite))))?;
    let columns = columns.clamp(1, panels.len());
    let rows = panels.len().div_ceil(columns);
    render!(stem, (420 * columns as u32, 340 * rows as u32), draw_strips, panels, columns)
}

fn draw_strips<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[StripPanel],
    columns: usize,
) -> Result<(), DrawError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let areas = root.split_evenly((panels.len().div_ceil(columns), columns));
    for (area, panel) in areas.iter().zip(panels) {
        let values = panel
            .strips
            .iter()
            .flat_map(|s| s.points.iter().map(|&v| (v, v, v)).chain([(s.summary.mean, s.summary.lo, s.summary.hi)]));
        let (y0, y1) = axis_range(values);
        let n = panel.strips.len();
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, y0..y1)?;
        let labels: Vec<String> = panel.strips.iter().map(|s| s.label.clone()).collect();
        let label_of = |v: &f64| category_label(&labels, *v);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&label_of)
            .y_desc(&panel.y_label)
            .y_label_formatter(&|v| short(*v))
            .label_style(("sans-serif", 12))
            .draw()?;
        for (i, s) in panel.strips.iter().enumerate() {
            let c = PALETTE[s.color % PALETTE.len()];
            let x = i as f64;
            let k = s.points.len().max(1) as f64;
            chart.draw_series(s.points.iter().enumerate().map(|(j, &v)| {
                // Spread the points a little sideways so equal values stay visible.
                let dx = (j as f64 - (k - 1.0) / 2.0) * 0.06;
                Circle::new((x + 0.18 + dx, v), 4, c.mix(0.35).filled())
            }))?;
            chart.draw_series([PathElement::new(vec![(x, s.summary.lo), (x, s.summary.hi)], c.stroke_width(2))])?;
            chart.draw_series([Circle::new((x, s.summary.mean), 6, c.filled())])?;
        }
    }
    Ok(())
}
