//! The PNG: quality against stored bytes (log axis), one panel per model, one colour per
//! method family; solid lines are the best fine-tuned figure of each size, dashed lines the
//! encode-only figure.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::points::{Model, Point, Variant};
use crate::style::{COLORS, FONT};
use crate::table::{Row, rows};

/// `family -> [(bytes, quality)]` for one variant kind.
type Lines = BTreeMap<String, Vec<(f64, f64)>>;

fn lines(rows: &[Row], model: Model, tuned: bool) -> Lines {
    let mut out = Lines::new();
    for row in rows {
        let cell = if tuned {
            row.best(model, usize::MAX)
                .filter(|(v, _)| matches!(v, Variant::FineTune { .. }))
                .map(|(_, c)| c)
        } else {
            row.cells.get(&Variant::Encode)
        };
        if let Some(c) = cell {
            out.entry(row.family.clone())
                .or_default()
                .push((row.bytes, scale(model, c.mean)));
        }
    }
    for points in out.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Accuracy in percent; bpc as is.
fn scale(model: Model, q: f64) -> f64 {
    match model {
        Model::Transformer => q,
        Model::Mnist => 100.0 * q,
    }
}

/// The same colour for a family in every panel.
fn color_of(family: &str) -> RGBColor {
    const ORDER: [&str; 8] = [
        "ternary",
        "sign blueprint",
        "paper, residual rank 0",
        "paper, residual rank 8",
        "low rank",
        "Burn PTQ (block 32)",
        "paper, residual rank 4",
        "paper, residual rank 16",
    ];
    let i = ORDER
        .iter()
        .position(|f| *f == family)
        .unwrap_or(ORDER.len() - 1);
    COLORS[i % COLORS.len()]
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    points: &[Point],
    model: Model,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (rows, dense) = rows(points, model);
    let encode = lines(&rows, model, false);
    let tuned = lines(&rows, model, true);
    let all: Vec<(f64, f64)> = encode
        .values()
        .chain(tuned.values())
        .flatten()
        .copied()
        .collect();
    if all.is_empty() {
        return Ok(());
    }
    let dense_q = dense.map(|d| scale(model, d.mean));
    let x_lo = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min) / 1.5;
    let x_hi = rows[0]
        .dense_bytes
        .max(all.iter().map(|p| p.0).fold(0.0, f64::max))
        * 1.5;
    let ys = all.iter().map(|p| p.1).chain(dense_q);
    // Encode-only figures of the coarsest formats are far off; keep the panel on the range
    // where the methods differ and let the worst points sit at the edge.
    let (mut y_lo, mut y_hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    match (model, dense_q) {
        (Model::Transformer, Some(d)) => y_hi = y_hi.min(d * 2.0),
        (Model::Mnist, Some(d)) => y_lo = y_lo.max(d - 30.0),
        _ => {}
    }
    let pad = 0.05 * (y_hi - y_lo).max(1e-3);
    let (y_lo, y_hi) = (y_lo - pad, y_hi + pad);
    let clamp = |(x, y): (f64, f64)| (x, y.clamp(y_lo, y_hi));

    let caption = match model {
        Model::Transformer => "Transformer: validation bpc (lower is better) vs stored bytes",
        Model::Mnist => "MNIST 784-256-10: test accuracy % vs stored bytes",
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), y_lo..y_hi)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("bytes of the compressed layers' weights (log)")
        .y_desc(model.metric())
        .x_label_formatter(&|x| {
            // Only the 1-2-5 ticks: plotters puts a label on every minor step of a log axis.
            let mantissa = x / 10f64.powf(x.log10().floor());
            if ![1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6) {
                String::new()
            } else if *x >= 1e6 {
                format!("{:.0} MB", x / 1e6)
            } else {
                format!("{:.0} kB", x / 1e3)
            }
        })
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(|e| err(&e))?;
    if let Some(d) = dense_q {
        let black = BLACK.mix(0.6);
        chart
            .draw_series(LineSeries::new([(x_lo, d), (x_hi, d)], black))
            .map_err(|e| err(&e))?
            .label("dense")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], black));
    }
    let families: Vec<&String> = {
        let mut f: Vec<&String> = encode.keys().chain(tuned.keys()).collect();
        f.sort();
        f.dedup();
        f
    };
    for family in &families {
        let color = color_of(family);
        if let Some(points) = tuned.get(*family) {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied().map(clamp),
                    color.stroke_width(3),
                ))
                .map_err(|e| err(&e))?
                .label(format!("{family}, fine-tuned"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(clamp(p), 5, color.filled())),
                )
                .map_err(|e| err(&e))?;
        }
        if let Some(points) = encode.get(*family) {
            chart
                .draw_series(DashedLineSeries::new(
                    points.iter().copied().map(clamp),
                    6,
                    4,
                    color.stroke_width(1),
                ))
                .map_err(|e| err(&e))?
                .label(format!("{family}, encode only"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color));
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(clamp(p), 4, color.stroke_width(1))),
                )
                .map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(match model {
            Model::Transformer => SeriesLabelPosition::UpperRight,
            Model::Mnist => SeriesLabelPosition::LowerRight,
        })
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    Ok(())
}

/// Draws both panels into `path`.
pub fn png(points: &[Point], path: &Path) -> Result<(), String> {
    crate::style::register_font_from_system()?;
    let models: Vec<Model> = [Model::Transformer, Model::Mnist]
        .into_iter()
        .filter(|m| points.iter().any(|p| p.model == *m))
        .collect();
    if models.is_empty() {
        return Err("no runs to plot".into());
    }
    let root = BitMapBackend::new(path, (1200, 620 * models.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    for (area, model) in root.split_evenly((models.len(), 1)).iter().zip(models) {
        draw_panel(area, points, model)?;
    }
    root.present().map_err(|e| e.to_string())
}
