//! The model-level inference results (`model_inference-*.json`): their table
//! (`model_inference.md`), their chart (`model_inference.png`) and the README's section.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::runs::backend_label;
use crate::schema::{ModelRecord, ModelRunFile, SCHEMA_VERSION};
use crate::style::{COLORS, FONT};

/// The README lines the model section goes between.
pub const START: &str = "<!-- model-table:start -->";
pub const END: &str = "<!-- model-table:end -->";

/// File names of the model bench's results, which [`crate::load::runs`] leaves to this
/// module.
pub const PREFIX: &str = "model_inference-";

/// The format whose speed the whole-model target is about: the best quality at ≥10x of the
/// compression curve (ternary 8x8, 14.7x on the README's transformer).
const TARGET_VARIANT: &str = "ternary-b8";
/// The introduction's claim: 3-4x faster inference; the target takes the lower end.
const TARGET_SPEEDUP: f64 = 3.0;

/// Every model result file of the current schema in `dir`, Flex first.
pub fn runs(dir: &Path) -> Result<Vec<(PathBuf, ModelRunFile)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(PREFIX))
        })
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        match serde_json::from_str::<ModelRunFile>(&text) {
            Ok(run) if run.schema == SCHEMA_VERSION => out.push((path, run)),
            Ok(run) => eprintln!("skipping {}: schema {}", path.display(), run.schema),
            Err(e) => eprintln!("skipping {}: not a model result ({e})", path.display()),
        }
    }
    out.sort_by_key(|(_, run)| (run.backend.name != "flex", run.backend.name.clone()));
    Ok(out)
}

const MIB: f64 = 1024.0 * 1024.0;

fn time(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n => format!("{:.0} us", n / 1e3),
    }
}

/// `a / b` as a share of the whole.
fn share(part: f64, whole: f64) -> String {
    format!("{:.0} %", 100.0 * part / whole.max(f64::MIN_POSITIVE))
}

fn heading(run: &ModelRunFile) -> String {
    format!(
        "{} on {} ({} cores, {}), commit {}",
        backend_label(&run.backend.name),
        run.machine.cpu,
        run.machine.cores,
        run.backend.device,
        run.records.first().map_or("-", |r| r.git_rev.as_str())
    )
}

fn rates(run: &ModelRunFile) -> String {
    let read = run.host_read.as_ref().map_or(String::new(), |r| {
        format!(
            "host memory read {:.1} GB/s (best pass summing {} MiB on every core); ",
            r.bytes_per_second / 1e9,
            r.buffer_bytes >> 20
        )
    });
    format!(
        "Bounds: {read}dense matmul {:.1} G multiply-adds/s (best of a 1024³ product).",
        run.dense_macs_per_second / 1e9
    )
}

fn model_line(r: &ModelRecord) -> String {
    let m = &r.model;
    format!(
        "**{}**: {} blocks, d_model {}, d_ff {}, {} heads, vocabulary {}, context {}",
        m.name, m.n_layers, m.d_model, m.d_ff, m.n_heads, m.vocab_size, m.context
    )
}

fn workload_line(r: &ModelRecord) -> String {
    match r.workload.as_str() {
        "generate" => format!(
            "generate: batch 1, {} tokens per call after a {}-token cached prompt, time per token",
            r.tokens_per_call, r.cached
        ),
        _ => format!(
            "prompt: {} windows of {} tokens in one forward, time per call",
            r.batch, r.tokens_per_call
        ),
    }
}

/// Dense first, then Burn's quantization, then the seed formats, as the bench orders them.
fn variant_rank(variant: &str) -> (usize, String) {
    let rank = ["dense", "burn-q4", "paper-b32", "sign-b8", "ternary-b8"]
        .iter()
        .position(|v| *v == variant)
        .unwrap_or(usize::MAX);
    (rank, variant.to_string())
}

/// One table per model and workload.
fn tables(run: &ModelRunFile, out: &mut String) {
    let mut groups: Vec<(&str, &str)> = run
        .records
        .iter()
        .map(|r| (r.model.name.as_str(), r.workload.as_str()))
        .collect();
    groups.dedup();
    groups.sort_by_key(|&(model, workload)| (model != "d1024", workload != "generate"));
    groups.dedup();
    for (model, workload) in groups {
        let mut rows: Vec<&ModelRecord> = run
            .records
            .iter()
            .filter(|r| r.model.name == model && r.workload == workload)
            .collect();
        rows.sort_by_key(|r| variant_rank(&r.variant));
        let first = rows[0];
        writeln!(out, "\n{} - {}\n", model_line(first), workload_line(first)).unwrap();
        out.push_str(
            "| format | projections | x smaller | time | tokens/s | x dense | x its bound | \
             projections / attention / rest | resident | call peak |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in rows {
            let b = &r.breakdown;
            writeln!(
                out,
                "| {} | {:.2} MiB | {:.1}x | {} | {:.0} | {} | {} | {} / {} / {} | {:.1} MiB | {:.1} MiB |",
                r.variant,
                r.projection_bytes as f64 / MIB,
                r.dense_projection_bytes as f64 / r.projection_bytes.max(1) as f64,
                time(r.median_ns),
                r.tokens_per_second,
                r.speedup_vs_dense.map_or("-".into(), |s| format!("{s:.2}x")),
                r.bound.as_ref().map_or("-".into(), |b| format!("{:.1}x ({})", b.ratio, b.kind)),
                share(b.projections_ns, r.median_ns),
                share(b.attention_ns, r.median_ns),
                share(b.rest_ns, r.median_ns),
                r.resident_bytes as f64 / MIB,
                r.call_peak_bytes as f64 / MIB,
            )
            .unwrap();
        }
    }
}

/// The whole-model target, from the Flex run.
fn target(runs: &[(PathBuf, ModelRunFile)]) -> String {
    let found = runs
        .iter()
        .filter(|(_, run)| run.backend.name == "flex")
        .flat_map(|(_, run)| &run.records)
        .find(|r| {
            r.model.name == "d1024" && r.workload == "generate" && r.variant == TARGET_VARIANT
        });
    match found.and_then(|r| Some((r, r.speedup_vs_dense?))) {
        Some((r, speedup)) => format!(
            "Target (d1024 at ≥10x fewer projection bytes, batch-1 generation ≥{TARGET_SPEEDUP}x \
             dense tokens/s, {TARGET_VARIANT}): **{speedup:.2}x** at {:.1}x fewer projection \
             bytes, {}.\n",
            r.dense_projection_bytes as f64 / r.projection_bytes.max(1) as f64,
            if speedup >= TARGET_SPEEDUP {
                "met"
            } else {
                "missed"
            }
        ),
        None => format!("Target: no Flex d1024 generate row of {TARGET_VARIANT} measured.\n"),
    }
}

/// The markdown of every run: what `model_inference.md` holds and the README shows.
pub fn markdown(runs: &[(PathBuf, ModelRunFile)]) -> String {
    let mut out = String::new();
    out.push_str(
        "Whole transformers, dense `Linear` against every projection format, one process per \
         backend (`cargo bench --bench model_inference`). x dense: tokens/s over the dense \
         model's in the same run. x its bound: time over what the machine cannot beat \
         (generate: every stored parameter and the key/value cache read once per token; \
         prompt: the multiply-adds at the best dense rate). The projections and the attention \
         products are timed alone with the shapes the call gives them; the rest is the \
         difference. Resident: backend memory held by the built model after one call; call \
         peak: the most one timed call added on top.\n",
    );
    out.push('\n');
    out.push_str(&target(runs));
    for (_, run) in runs {
        writeln!(out, "\n#### {}\n\n{}", heading(run), rates(run)).unwrap();
        tables(run, &mut out);
    }
    out
}

/// One panel per backend and model: tokens/s over dense against stored projection bytes.
pub fn png(runs: &[(PathBuf, ModelRunFile)], path: &Path) -> Result<usize, String> {
    let mut panels: Vec<(&ModelRunFile, String)> = Vec::new();
    for (_, run) in runs {
        let mut models: Vec<String> = run.records.iter().map(|r| r.model.name.clone()).collect();
        models.sort();
        models.dedup();
        panels.extend(models.into_iter().map(|m| (run, m)));
    }
    if panels.is_empty() {
        return Err("no model_inference results".into());
    }
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::new(path, (1100, 420 * panels.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (area, (run, model)) in root.split_evenly((panels.len(), 1)).iter().zip(&panels) {
        let rows: Vec<&ModelRecord> = run
            .records
            .iter()
            .filter(|r| &r.model.name == model && r.speedup_vs_dense.is_some())
            .collect();
        let mib = |r: &ModelRecord| r.projection_bytes as f64 / MIB;
        let x_lo = rows.iter().map(|r| mib(r)).fold(f64::MAX, f64::min) / 2.0;
        let x_hi = rows.iter().map(|r| mib(r)).fold(0.0, f64::max) * 2.0;
        let speedups = rows.iter().filter_map(|r| r.speedup_vs_dense);
        let y_lo = speedups.clone().fold(1.0f64, f64::min) / 1.5;
        let y_hi = speedups.fold(1.0f64, f64::max) * 1.5;
        let caption = format!(
            "{model}: tokens/s over dense vs projection bytes - {} on {} ({} cores)",
            backend_label(&run.backend.name),
            run.machine.cpu,
            run.machine.cores
        );
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FONT, 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("stored projection bytes (MiB, log)")
            .y_desc("tokens/s over dense (x, log)")
            .x_label_formatter(&|x| format!("{x:.2}"))
            .y_label_formatter(&|y| format!("{y:.1}x"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(|e| err(&e))?;
        let parity = BLACK.mix(0.6);
        chart
            .draw_series(LineSeries::new([(x_lo, 1.0), (x_hi, 1.0)], parity))
            .map_err(|e| err(&e))?;
        for (i, workload) in ["generate", "prompt"].into_iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<(f64, f64, &str)> = rows
                .iter()
                .filter(|r| r.workload == workload)
                .filter_map(|r| Some((mib(r), r.speedup_vs_dense?, r.variant.as_str())))
                .collect();
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(x, y, _)| Circle::new((x, y), 6, color.filled())),
                )
                .map_err(|e| err(&e))?
                .label(match workload {
                    "generate" => "generate (batch 1, per token)",
                    _ => "prompt (batch 32 windows)",
                })
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, color.filled()));
            chart
                .draw_series(points.iter().map(|&(x, y, name)| {
                    Text::new(
                        name.to_string(),
                        (x, y),
                        (FONT, 14).into_font().color(&color),
                    )
                }))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(panels.len())
}
