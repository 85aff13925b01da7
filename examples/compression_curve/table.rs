//! The markdown table of the curve, and the curve's targets measured against it.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::points::{Model, Point, Variant};

/// Mean and sample standard deviation (0 for one value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One method's figures for one variant, averaged over seeds.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Mean quality.
    pub mean: f64,
    /// Standard deviation over seeds.
    pub sd: f64,
    /// Seeds averaged.
    pub n: usize,
}

/// Every variant of one method on one model.
#[derive(Debug, Clone)]
pub struct Row {
    /// The method.
    pub method: String,
    /// The plot line it belongs to.
    pub family: String,
    /// Whether it is one of this crate's formats.
    pub ours: bool,
    /// Stored bytes of the compressed weights.
    pub bytes: f64,
    /// Dense bytes of the same weights.
    pub dense_bytes: f64,
    /// Quality per variant.
    pub cells: BTreeMap<Variant, Cell>,
    /// Mean relative Frobenius error of the encode, where reported.
    pub encode_rel_error: Option<f64>,
}

impl Row {
    /// `dense_bytes / bytes`.
    pub fn compression(&self) -> f64 {
        self.dense_bytes / self.bytes
    }

    /// The best variant whose fine-tuning is at most `max_length` steps or epochs (encode
    /// only included).
    pub fn best(&self, model: Model, max_length: usize) -> Option<(&Variant, &Cell)> {
        self.cells
            .iter()
            .filter(|(v, _)| match v {
                Variant::Encode => true,
                Variant::FineTune { length, .. } => *length <= max_length,
                Variant::Dense => false,
            })
            .max_by(|a, b| {
                let (x, y) = (a.1.mean, b.1.mean);
                if model.higher_is_better() {
                    x.total_cmp(&y)
                } else {
                    y.total_cmp(&x)
                }
            })
    }
}

/// The rows of `model`, by increasing bytes, and the dense figure (mean over seeds).
pub fn rows(points: &[Point], model: Model) -> (Vec<Row>, Option<Cell>) {
    let mut by_method: BTreeMap<String, Vec<&Point>> = BTreeMap::new();
    let mut dense = Vec::new();
    for p in points.iter().filter(|p| p.model == model) {
        if p.variant == Variant::Dense {
            dense.push(p.quality);
        } else {
            by_method.entry(p.method.clone()).or_default().push(p);
        }
    }
    let mut rows: Vec<Row> = by_method
        .into_iter()
        .map(|(method, ps)| {
            let mut cells: BTreeMap<Variant, Vec<f64>> = BTreeMap::new();
            for p in &ps {
                cells.entry(p.variant.clone()).or_default().push(p.quality);
                // A fine-tune run reports its encode-only figure too.
                if let (Some(q), Variant::FineTune { .. }) = (p.after_encode, &p.variant)
                    && !ps.iter().any(|o| o.variant == Variant::Encode)
                {
                    cells.entry(Variant::Encode).or_default().push(q);
                }
            }
            let errors: Vec<f64> = ps.iter().filter_map(|p| p.encode_rel_error).collect();
            Row {
                family: ps[0].family(),
                ours: ps[0].is_ours(),
                bytes: ps[0].bytes,
                dense_bytes: ps[0].dense_bytes,
                cells: cells
                    .into_iter()
                    .map(|(v, q)| {
                        let (mean, sd) = mean_sd(&q);
                        (
                            v,
                            Cell {
                                mean,
                                sd,
                                n: q.len(),
                            },
                        )
                    })
                    .collect(),
                encode_rel_error: (!errors.is_empty()).then(|| mean_sd(&errors).0),
                method,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.bytes.total_cmp(&b.bytes));
    let dense = (!dense.is_empty()).then(|| {
        let (mean, sd) = mean_sd(&dense);
        Cell {
            mean,
            sd,
            n: dense.len(),
        }
    });
    (rows, dense)
}

fn fmt_quality(model: Model, cell: &Cell) -> String {
    match model {
        Model::Transformer if cell.n > 1 => format!("{:.4} ± {:.4}", cell.mean, cell.sd),
        Model::Transformer => format!("{:.4}", cell.mean),
        Model::Mnist if cell.n > 1 => {
            format!("{:.2} ± {:.2} %", 100.0 * cell.mean, 100.0 * cell.sd)
        }
        Model::Mnist => format!("{:.2} %", 100.0 * cell.mean),
    }
}

/// `quality` relative to dense: `+x.x %` bpc (worse when positive) or accuracy points.
fn vs_dense(model: Model, quality: f64, dense: f64) -> String {
    match model {
        Model::Transformer => format!("{:+.1} %", 100.0 * (quality / dense - 1.0)),
        Model::Mnist => format!("{:+.2} pt", 100.0 * (quality - dense)),
    }
}

fn model_section(out: &mut String, points: &[Point], model: Model) {
    let (rows, dense) = rows(points, model);
    if rows.is_empty() {
        return;
    }
    let mut variants: Vec<Variant> = rows.iter().flat_map(|r| r.cells.keys().cloned()).collect();
    variants.sort();
    variants.dedup();
    let title = match model {
        Model::Transformer => "Character-level transformer (2 layers, d_model 128)",
        Model::Mnist => "MNIST 784-256-10, both layers compressed",
    };
    let _ = writeln!(out, "## {title}\n");
    if let Some(d) = &dense {
        let _ = writeln!(
            out,
            "Dense: {} {} ({} run{}), {:.0} bytes in the compressed layers.\n",
            model.metric(),
            fmt_quality(model, d),
            d.n,
            if d.n == 1 { "" } else { "s" },
            rows[0].dense_bytes
        );
    }
    let _ = write!(out, "| method | bytes | compression | encode error |");
    for v in &variants {
        let _ = write!(out, " {} |", v.title(model));
    }
    let _ = writeln!(out, " best vs dense |");
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|{}---|",
        "---:|".repeat(variants.len())
    );
    for row in &rows {
        let _ = write!(
            out,
            "| {} | {:.0} | {:.1}x | {} |",
            row.method,
            row.bytes,
            row.compression(),
            row.encode_rel_error
                .map_or("-".into(), |e| format!("{e:.3}"))
        );
        for v in &variants {
            let _ = write!(
                out,
                " {} |",
                row.cells
                    .get(v)
                    .map_or("-".into(), |c| fmt_quality(model, c))
            );
        }
        let best = row.best(model, usize::MAX);
        let _ = writeln!(
            out,
            " {} |",
            match (best, &dense) {
                (Some((_, c)), Some(d)) => vs_dense(model, c.mean, d.mean),
                _ => "-".into(),
            }
        );
    }
    let _ = writeln!(out);
}

/// Whether `a` is at least as good as `b` for `model`.
fn at_least_as_good(model: Model, a: f64, b: f64) -> bool {
    if model.higher_is_better() {
        a >= b
    } else {
        a <= b
    }
}

fn targets(out: &mut String, points: &[Point]) {
    let _ = writeln!(out, "## Targets, as measured\n");
    let (tf, tf_dense) = rows(points, Model::Transformer);
    if let Some(d) = &tf_dense {
        for (ratio, within) in [(10.0, 3.0), (30.0, 10.0)] {
            let best = tf
                .iter()
                .filter(|r| r.ours && r.compression() >= ratio)
                .filter_map(|r| r.best(Model::Transformer, 200).map(|(v, c)| (r, v, c)))
                .min_by(|a, b| a.2.mean.total_cmp(&b.2.mean));
            let line = match best {
                Some((r, v, c)) => {
                    let gap = 100.0 * (c.mean / d.mean - 1.0);
                    format!(
                        "{}: {} at {:.1}x ({}), {:.4} against dense {:.4}: {gap:+.1} % ({})",
                        if gap <= within { "met" } else { "missed" },
                        r.method,
                        r.compression(),
                        v.title(Model::Transformer),
                        c.mean,
                        d.mean,
                        if gap <= within { "within" } else { "outside" },
                    )
                }
                None => "not measured: no run of our formats at that compression".into(),
            };
            let _ = writeln!(
                out,
                "- Transformer at ≥{ratio:.0}x fewer projection bytes, within {within:.0} % of \
                 dense after ≤200 fine-tuning steps: {line}."
            );
        }
    }
    let (mnist, mnist_dense) = rows(points, Model::Mnist);
    let best = mnist
        .iter()
        .filter(|r| r.ours && r.compression() >= 15.0)
        .filter_map(|r| r.best(Model::Mnist, 1).map(|(v, c)| (r, v, c)))
        .max_by(|a, b| a.2.mean.total_cmp(&b.2.mean));
    if let Some((r, v, c)) = best {
        let _ = writeln!(
            out,
            "- MNIST, both layers at ≥15x, ≥97.5 % (mean of seeds) with ≤1 extra epoch: {}: {} \
             at {:.1}x ({}), {:.2} ± {:.2} % over {} seeds{}.",
            if c.mean >= 0.975 { "met" } else { "missed" },
            r.method,
            r.compression(),
            v.title(Model::Mnist),
            100.0 * c.mean,
            100.0 * c.sd,
            c.n,
            mnist_dense.map_or(String::new(), |d| format!(
                " (dense {:.2} %)",
                100.0 * d.mean
            )),
        );
    }
    for (model, rows) in [(Model::Transformer, &tf), (Model::Mnist, &mnist)] {
        let mut wins = 0;
        let mut losses = Vec::new();
        for base in rows.iter().filter(|r| !r.ours) {
            let Some((_, b)) = base.best(model, usize::MAX) else {
                continue;
            };
            let ours = rows
                .iter()
                .filter(|r| r.ours && r.bytes <= base.bytes)
                .filter_map(|r| r.best(model, usize::MAX).map(|(_, c)| (r, c.mean)))
                .reduce(|a, b| {
                    if at_least_as_good(model, a.1, b.1) {
                        a
                    } else {
                        b
                    }
                });
            match ours {
                Some((_, q)) if at_least_as_good(model, q, b.mean) => wins += 1,
                Some((r, q)) => losses.push(format!(
                    "{} ({:.0} B: {}) beats our best at ≤ its bytes, {} ({:.0} B: {})",
                    base.method,
                    base.bytes,
                    fmt_value(model, b.mean),
                    r.method,
                    r.bytes,
                    fmt_value(model, q)
                )),
                None => losses.push(format!(
                    "{} ({:.0} B): none of our runs is that small",
                    base.method, base.bytes
                )),
            }
        }
        let _ = writeln!(
            out,
            "- {}: our best at the same or fewer bytes beats {wins} of {} baseline rows (low rank, \
             Burn PTQ){}",
            match model {
                Model::Transformer => "Transformer",
                Model::Mnist => "MNIST",
            },
            wins + losses.len(),
            if losses.is_empty() {
                ".".to_string()
            } else {
                format!("; not: {}.", losses.join("; "))
            }
        );
    }
    let _ = writeln!(out);
}

fn fmt_value(model: Model, q: f64) -> String {
    match model {
        Model::Transformer => format!("{q:.4} bpc"),
        Model::Mnist => format!("{:.2} %", 100.0 * q),
    }
}

/// The whole file.
pub fn markdown(points: &[Point], machine: &str, command: &str) -> String {
    let mut out = String::from("# Compressing a trained model: quality against stored bytes\n\n");
    let _ = writeln!(
        out,
        "- produced by: `scripts/compression_curve.sh` (the runs) and `{command}` (this file)\n\
         - machine: {machine}\n\
         - bytes: what the compressed layers store (seeds, residual factors, low-rank factors, \
         or Burn's packed values plus one f32 scale per block): for the transformer its 12 \
         attention and MLP projections with their biases, for MNIST both layers' weights \
         without biases. Compression is the same layers' dense f32 bytes over that.\n\
         - quality: transformer validation bpc on the first 2000 windows of 64 characters of \
         the validation split (one run, seed 42); MNIST test accuracy, mean ± sd over the \
         seeds listed, each from its own dense model.\n"
    );
    targets(&mut out, points);
    model_section(&mut out, points, Model::Transformer);
    model_section(&mut out, points, Model::Mnist);
    out
}
