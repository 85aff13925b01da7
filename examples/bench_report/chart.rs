//! The PNG chart: forward speedup of the closed-form RBE layer over dense `Linear`
//! against batch size, one panel per backend and machine.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::runs::{backend_label, run_order};
use crate::schema::RunFile;
use crate::style::{COLORS, FONT};

/// `(weights, d_input, d_output, block) -> [(batch, speedup)]` of the closed-form forward.
type Series = BTreeMap<(usize, usize, usize, usize), Vec<(f64, f64)>>;

fn series(run: &RunFile) -> Series {
    let mut out = Series::new();
    for r in &run.records {
        if r.variant != "rbe-closed-form" {
            continue;
        }
        if let (Some(block), Some(s)) = (r.block, r.speedup_vs_dense) {
            out.entry((r.d_input * r.d_output, r.d_input, r.d_output, block))
                .or_default()
                .push((r.batch as f64, s));
        }
    }
    for points in out.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// 1-2-5 ticks inside `[lo, hi]`: plotters' log axis labels only powers of ten, which
/// leaves a panel spanning 0.2x..4x with a single label.
fn y_ticks(lo: f64, hi: f64) -> Vec<f64> {
    (-3..4)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(|t| (lo..=hi).contains(t))
        .collect()
}

/// Draws every `linear_forward` run with speedups into one PNG at `path`.
pub fn speedup_png(runs: &[&RunFile], path: &Path) -> Result<usize, String> {
    let mut runs: Vec<&RunFile> = runs.to_vec();
    runs.sort_by_key(|r| run_order(r));
    let panels: Vec<(&RunFile, Series)> = runs
        .iter()
        .filter(|r| r.bench == "linear_forward")
        .map(|r| (*r, series(r)))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    if panels.is_empty() {
        return Err("no linear_forward results with a dense baseline".into());
    }
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::new(path, (1100, 460 * panels.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (area, (run, series)) in root.split_evenly((panels.len(), 1)).iter().zip(&panels) {
        let speedups = series.values().flatten().map(|p| p.1);
        let lo = speedups.clone().fold(1.0f64, f64::min) / 1.6;
        let hi = speedups.fold(1.0f64, f64::max) * 1.6;
        let batches: Vec<f64> = {
            let mut b: Vec<f64> = series.values().flatten().map(|p| p.0).collect();
            b.sort_by(f64::total_cmp);
            b.dedup();
            b
        };
        // Room right of the last batch keeps the legend off the data.
        let x_max = batches.last().copied().unwrap_or(256.0) * 40.0;
        let caption = format!(
            "RBE closed form vs dense Linear, forward - {} on {} ({} cores)",
            backend_label(&run.backend.name),
            run.machine.cpu,
            run.machine.cores
        );
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FONT, 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (0.7f64..x_max).log_scale().with_key_points(batches),
                (lo..hi).log_scale().with_key_points(y_ticks(lo, hi)),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("batch (rows per call)")
            .y_desc("speedup over dense (x)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y}x"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(|e| err(&e))?;

        let parity = BLACK.mix(0.6);
        chart
            .draw_series(LineSeries::new([(0.7, 1.0), (x_max, 1.0)], parity))
            .map_err(|e| err(&e))?
            .label("1x: as fast as dense")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], parity));
        for (i, ((_, d_in, d_out, block), points)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(3),
                ))
                .map_err(|e| err(&e))?
                .label(format!("{d_in}x{d_out}, {block}x{block} blocks"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 5, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(panels.len())
}
