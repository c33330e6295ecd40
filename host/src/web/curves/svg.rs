//! Drawing of a [`Chart`] as an inline SVG element: no script, no external resource,
//! readable as it is (title, axes with week labels and percentages, legend).

use super::Chart;
use maud::{Markup, html};
use std::fmt::Write;

/// Distinct colours for up to 20 lines; beyond, they repeat dashed.
const PALETTE: [&str; 20] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#7b4173", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363",
];

const WIDTH: f64 = 820.0;
const LEFT: f64 = 56.0;
const TOP: f64 = 40.0;
const PLOT_HEIGHT: f64 = 240.0;
const LEGEND_WIDTH: f64 = 210.0;
const LEGEND_ROW: f64 = 16.0;

/// A round upper bound of the y axis and its tick step (1, 2 or 5 × a power of ten).
fn y_scale(max: f64) -> (f64, f64) {
    if max.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return (0.01, 0.002);
    }
    let mut step = 10f64.powi(max.log10().floor() as i32 - 1);
    for factor in [1.0, 2.0, 5.0].iter().cycle() {
        if max / (step * factor) <= 5.0 {
            step *= factor;
            break;
        }
        if *factor == 5.0 {
            step *= 10.0;
        }
    }
    ((max / step).ceil() * step, step)
}

fn percent(value: f64, step: f64) -> String {
    let decimals = if step >= 0.01 {
        0
    } else if step >= 0.001 {
        1
    } else {
        2
    };
    format!("{:.*}%", decimals, value * 100.0)
}

/// The chart as an inline SVG element: title, axes with week labels and percentages, one
/// `<path class="series">` per series (gaps where a point is unknown; a point alone
/// between gaps is a short dash) and a legend.
pub fn svg(chart: &Chart) -> Markup {
    let legend_height = chart.series.len() as f64 * LEGEND_ROW;
    let height = TOP + PLOT_HEIGHT.max(legend_height) + 56.0;
    let right = WIDTH - LEGEND_WIDTH;
    let bottom = TOP + PLOT_HEIGHT;
    let n = chart.weeks.len();
    let x = |i: usize| {
        if n <= 1 {
            (LEFT + right) / 2.0
        } else {
            LEFT + (right - LEFT - 10.0) * i as f64 / (n - 1) as f64
        }
    };
    let max = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .fold(0.0f64, |m, &v| m.max(v));
    let (top_value, step) = y_scale(max);
    let y = |v: f64| bottom - PLOT_HEIGHT * v / top_value;
    let one = |v: f64| format!("{v:.1}");
    // The values of the horizontal grid lines.
    let mut grid = Vec::new();
    let mut value = 0.0;
    while value <= top_value + step / 2.0 {
        grid.push(value);
        value += step;
    }
    // A tick per week, a label every few weeks so that labels never overlap.
    let every = n.div_ceil(9).max(1);
    let empty = chart
        .series
        .iter()
        .all(|s| s.points.iter().all(Option::is_none));
    html! {
        svg class="curves" id=(chart.id) xmlns="http://www.w3.org/2000/svg" role="img"
            aria-labelledby={ (chart.id) "-title" } viewBox={ "0 0 " (WIDTH) " " (height) }
            width=(WIDTH) height=(height) font-family="system-ui,sans-serif" font-size="11" {
            title id={ (chart.id) "-title" } { (chart.title) }
            desc {
                "Share per ISO week; a gap is a week whose share is unknown (a redacted cell, \
                 or no coded consultation)."
            }
            rect width="100%" height="100%" fill="#fff" {}
            text class="chart-title" x=(LEFT) y="22" font-size="14" font-weight="600" {
                (chart.title)
            }
            // Horizontal grid lines with their percentages.
            @for value in grid {
                line x1=(LEFT) x2=(one(right)) y1=(one(y(value))) y2=(one(y(value)))
                    stroke="#e5e7eb" {}
                text x=(one(LEFT - 6.0)) y=(one(y(value) + 4.0)) text-anchor="end"
                    fill="#374151" { (percent(value, step)) }
            }
            line class="axis" x1=(LEFT) x2=(one(right)) y1=(bottom) y2=(bottom)
                stroke="#374151" {}
            line class="axis" x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(bottom) stroke="#374151" {}
            @for (i, week) in chart.weeks.iter().enumerate() {
                @let long = i % every == 0;
                line x1=(one(x(i))) x2=(one(x(i))) y1=(bottom)
                    y2=(one(bottom + if long { 5.0 } else { 2.5 })) stroke="#374151" {}
                @if long {
                    text class="week" x=(one(x(i))) y=(one(bottom + 18.0)) text-anchor="middle"
                        fill="#374151" { (week) }
                }
            }
            text x=(one((LEFT + right) / 2.0)) y=(one(bottom + 38.0)) text-anchor="middle"
                fill="#374151" { "ISO week" }
            @if empty {
                // An empty plot would look broken: say why it is empty.
                text class="no-point" x=(one((LEFT + right) / 2.0))
                    y=(one(TOP + PLOT_HEIGHT / 2.0)) text-anchor="middle" fill="#6b7280" {
                    "No point is known: each one includes a redacted cell."
                }
            }
            @for (i, series) in chart.series.iter().enumerate() {
                @let colour = PALETTE[i % PALETTE.len()];
                @let dash = (i >= PALETTE.len()).then_some("6 3");
                @let row = TOP + 4.0 + i as f64 * LEGEND_ROW;
                @let lx = right + 16.0;
                path class="series" data-series=(series.name)
                    d=(path_data(&series.points, &x, &y)) fill="none" stroke=(colour)
                    stroke-width="2" stroke-linejoin="round" stroke-linecap="round"
                    stroke-dasharray=[dash] {}
                g class="legend-entry" {
                    line x1=(one(lx)) x2=(one(lx + 22.0)) y1=(one(row)) y2=(one(row))
                        stroke=(colour) stroke-width="3" stroke-dasharray=[dash] {}
                    text x=(one(lx + 28.0)) y=(one(row + 4.0)) { (series.name) }
                }
            }
        }
    }
}

/// `M x y L x y …`, starting a new subpath after each gap; a point alone between gaps is
/// a short dash.
fn path_data(points: &[Option<f64>], x: &impl Fn(usize) -> f64, y: &impl Fn(f64) -> f64) -> String {
    let mut d = String::new();
    for (i, point) in points.iter().enumerate() {
        let Some(value) = point else { continue };
        let joined = i > 0 && points[i - 1].is_some();
        let alone = !joined && points.get(i + 1).is_none_or(Option::is_none);
        if alone {
            // A zero-length segment would be a dot no wider than the line: a short dash
            // centred on the week is easier to see.
            let _ = write!(d, "M{:.1} {:.1}h4", x(i) - 2.0, y(*value));
        } else {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if joined { "L" } else { "M" },
                x(i),
                y(*value)
            );
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_y_axis_ends_on_a_round_value_above_the_largest_share() {
        assert_eq!(y_scale(0.0), (0.01, 0.002));
        let (top, step) = y_scale(0.123);
        assert!(
            (top - 0.15).abs() < 1e-9 && (step - 0.05).abs() < 1e-9,
            "{top} {step}"
        );
        let (top, step) = y_scale(0.031);
        assert!(
            (top - 0.04).abs() < 1e-9 && (step - 0.01).abs() < 1e-9,
            "{top} {step}"
        );
        assert_eq!(percent(0.15, 0.05), "15%");
        assert_eq!(percent(0.004, 0.002), "0.4%");
    }
}
