//! The speed targets of the project, each checked against the Flex results (Burn 0.21's
//! CPU backend, whose dense `Linear` is the baseline), and the README's speed section.

use std::fmt::Write;
use std::path::PathBuf;

use crate::runs::{rate_note, run_order};
use crate::schema::{Record, RunFile};

/// The forward targets' layer: 4096x4096 with 32x32 blocks.
const FORWARD_SHAPE: (usize, usize) = (4096, 4096);
const FORWARD_BLOCK: usize = 32;
/// The MLP targets: 784-256-10, batch 64, 8x8 blocks.
const MLP_SHAPE: (usize, usize) = (784, 10);
const MLP_BATCH: usize = 64;
const MLP_BLOCK: usize = 8;
/// The wide training target: a 4096-wide layer, 32x32 blocks (batch 64 preferred).
const WIDE: usize = 4096;
const WIDE_BLOCK: usize = 32;
const WIDE_BATCH: usize = 64;
/// The stack target: as many distinct forward-target layers as a 16-block transformer runs
/// per forward (the bench's variant and `model` label for it).
const STACK_LAYERS: usize = 96;
const STACK_VARIANT: &str = "rbe-closed-form-stack";

/// What a target compares.
#[derive(Clone, Copy)]
enum Goal {
    /// `dense / RBE >= x`.
    FasterThanDense(f64),
    /// `RBE / dense <= x` (1: no slower than dense).
    AtMostTimesDense(f64),
    /// `RBE / compute bound <= x`.
    WithinBound(f64),
    /// `per-layer time in a stack of distinct layers / single-layer time <= x`: what a
    /// layer keeps between calls must survive the other layers' calls.
    WithinSingleLayer(f64),
}

struct Target {
    what: String,
    goal: Goal,
    record: Option<Record>,
    /// What the record is compared with, where the goal needs a second record of the run.
    baseline: Option<Record>,
}

impl Target {
    fn goal_text(&self) -> String {
        match self.goal {
            Goal::FasterThanDense(x) => format!(">= {x}x faster than dense"),
            Goal::AtMostTimesDense(x) => {
                if x <= 1.0 {
                    format!("no slower than dense (<= {x}x the dense time)")
                } else {
                    format!("<= {x}x the dense time")
                }
            }
            Goal::WithinBound(x) => format!("<= {x}x its compute bound"),
            Goal::WithinSingleLayer(x) => format!("time per layer <= {x}x the single-layer time"),
        }
    }

    /// The measured value in the goal's terms, the evidence, and whether it is met.
    fn measured(&self) -> Option<(String, bool)> {
        let r = self.record.as_ref()?;
        let dense_time = |r: &Record| r.dense_median_ns.map(ns);
        match self.goal {
            Goal::FasterThanDense(x) => {
                let s = r.speedup_vs_dense?;
                let text = format!("{s:.2}x faster ({} vs {})", ns(r.median_ns), dense_time(r)?);
                Some((text, s >= x))
            }
            Goal::AtMostTimesDense(x) => {
                let t = 1.0 / r.speedup_vs_dense?;
                let text = format!(
                    "{t:.2}x the dense time ({} vs {})",
                    ns(r.median_ns),
                    dense_time(r)?
                );
                Some((text, t <= x))
            }
            Goal::WithinBound(x) => {
                let b = r.compute_bound.as_ref()?;
                let text = format!(
                    "{:.2}x its bound ({} vs {})",
                    b.ratio,
                    ns(r.median_ns),
                    ns(b.bound_ns)
                );
                Some((text, b.ratio <= x))
            }
            Goal::WithinSingleLayer(x) => {
                let single = self.baseline.as_ref()?;
                let ratio = r.median_ns / single.median_ns;
                let mut text = format!(
                    "{ratio:.2}x ({} per layer vs {} for one layer",
                    ns(r.median_ns),
                    ns(single.median_ns)
                );
                if let Some(s) = r.speedup_vs_dense {
                    text.push_str(&format!("; {s:.1}x faster than one dense layer"));
                }
                text.push(')');
                // Both come from one results file, which merges runs: say so when they were
                // measured on different code.
                if r.git_rev != single.git_rev {
                    text.push_str(&format!(
                        " (measured on different code: {} and {})",
                        r.git_rev, single.git_rev
                    ));
                }
                Some((text, ratio <= x))
            }
        }
    }
}

fn ns(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.0} us", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

fn find(
    run: Option<&RunFile>,
    shape: (usize, usize),
    batch: Option<usize>,
    block: usize,
    variant: &str,
) -> Option<Record> {
    run?.records
        .iter()
        .filter(|r| {
            (r.d_input, r.d_output) == shape
                && batch.is_none_or(|b| r.batch == b)
                && r.block == Some(block)
                && r.variant == variant
        })
        .min_by_key(|r| r.batch.abs_diff(WIDE_BATCH))
        .cloned()
}

/// The targets for one machine's Flex runs.
fn targets_of(forward: Option<&RunFile>, training: Option<&RunFile>) -> Vec<Target> {
    let (d_in, d_out) = FORWARD_SHAPE;
    let mut out = Vec::new();
    for (batch, x) in [(1, 20.0), (32, 10.0), (256, 5.0)] {
        out.push(Target {
            what: format!(
                "Forward {d_in}x{d_out}, B={FORWARD_BLOCK}, batch {batch}: vs dense `Linear`"
            ),
            goal: Goal::FasterThanDense(x),
            record: find(
                forward,
                FORWARD_SHAPE,
                Some(batch),
                FORWARD_BLOCK,
                "rbe-closed-form",
            ),
            baseline: None,
        });
    }
    out.push(Target {
        what: format!("Forward {d_in}x{d_out}, sign blueprint B=8, batch 1: vs dense `Linear`"),
        goal: Goal::FasterThanDense(5.0),
        record: find(forward, FORWARD_SHAPE, Some(1), 8, "rbe-sign"),
        baseline: None,
    });
    let stack = find(
        forward,
        FORWARD_SHAPE,
        Some(1),
        FORWARD_BLOCK,
        STACK_VARIANT,
    )
    .filter(|r| r.model.as_deref() == Some(&format!("stack-{STACK_LAYERS}")));
    out.push(Target {
        what: format!(
            "Forward, stack of {STACK_LAYERS} distinct {d_in}x{d_out} layers, B={FORWARD_BLOCK}, \
             batch 1: per layer vs one layer called alone"
        ),
        goal: Goal::WithinSingleLayer(1.3),
        record: stack,
        baseline: find(
            forward,
            FORWARD_SHAPE,
            Some(1),
            FORWARD_BLOCK,
            "rbe-closed-form",
        ),
    });
    for batch in [32, 256] {
        out.push(Target {
            what: format!(
                "Forward {d_in}x{d_out}, B={FORWARD_BLOCK}, batch {batch}: vs compute bound"
            ),
            goal: Goal::WithinBound(4.0),
            record: find(
                forward,
                FORWARD_SHAPE,
                Some(batch),
                FORWARD_BLOCK,
                "rbe-closed-form",
            ),
            baseline: None,
        });
    }
    for (on, x) in [(false, 1.0), (true, 1.5)] {
        let state = if on { "on" } else { "off" };
        out.push(Target {
            what: format!(
                "Train step MLP 784-256-10, batch {MLP_BATCH}, B={MLP_BLOCK}, transitions {state}"
            ),
            goal: Goal::AtMostTimesDense(x),
            record: find(
                training,
                MLP_SHAPE,
                Some(MLP_BATCH),
                MLP_BLOCK,
                &format!("rbe-closed-form-transitions-{state}"),
            ),
            baseline: None,
        });
    }
    let wide = find(
        training,
        (WIDE, WIDE),
        None,
        WIDE_BLOCK,
        "rbe-closed-form-transitions-off",
    );
    out.push(Target {
        what: format!(
            "Train step {WIDE}x{WIDE} layer, batch {}, B={WIDE_BLOCK}, transitions off",
            wide.as_ref().map_or(WIDE_BATCH, |r| r.batch)
        ),
        goal: Goal::FasterThanDense(4.0),
        record: wide,
        baseline: None,
    });
    out
}

/// Per machine with Flex results: the targets table.
pub fn targets(runs: &[(PathBuf, RunFile)]) -> String {
    let mut flex: Vec<&RunFile> = runs
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.backend.name == "flex")
        .collect();
    flex.sort_by_key(|r| run_order(r));
    let mut machines: Vec<&str> = flex.iter().map(|r| r.machine.label.as_str()).collect();
    machines.dedup();
    if machines.is_empty() {
        return "No Flex results yet: the targets are checked on Flex (`scripts/benches.sh`).\n"
            .into();
    }
    let mut out = String::new();
    for machine in machines {
        let of = |bench: &str| {
            flex.iter()
                .copied()
                .find(|r| r.machine.label == machine && r.bench == bench)
        };
        let (forward, training) = (of("linear_forward"), of("training_step"));
        let m = &forward.or(training).expect("one of them exists").machine;
        let quick = [forward, training]
            .into_iter()
            .flatten()
            .any(|r| r.records.iter().any(|r| r.quick));
        writeln!(
            out,
            "On {} ({} cores, label `{}`), Flex (Burn 0.21's CPU backend), RBE closed form \
             against dense `Linear` in the same run{}:\n\n\
             | target | goal | measured | status |\n|---|---|---|---|",
            m.cpu,
            m.cores,
            m.label,
            if quick {
                " (criterion `--quick`: few samples)"
            } else {
                ""
            },
        )
        .unwrap();
        for t in targets_of(forward, training) {
            let (measured, status) = match t.measured() {
                Some((text, true)) => (text, "**met**"),
                Some((text, false)) => (text, "**missed**"),
                None => ("-".into(), "not measured"),
            };
            writeln!(
                out,
                "| {} | {} | {measured} | {status} |",
                t.what,
                t.goal_text()
            )
            .unwrap();
        }
        out.push('\n');
    }
    out
}

/// Start and end markers of the generated section in the README.
pub const START: &str = "<!-- speed-table:start -->";
pub const END: &str = "<!-- speed-table:end -->";

/// The README's speed section: the targets and the Flex tables, pointing to the rest.
pub fn readme_section(runs: &[(PathBuf, RunFile)]) -> String {
    let mut out = String::new();
    out.push_str(
        "<!-- Generated by `cargo run --release --example bench_report -- --readme README.md` \
         from benches/results/*.json; edit the runs, not this section. -->\n\n",
    );
    out.push_str(&targets(runs));
    let mut flex: Vec<&RunFile> = runs
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.backend.name == "flex")
        .collect();
    flex.sort_by_key(|r| run_order(r));
    for run in &flex {
        match run.bench.as_str() {
            "linear_forward" => forward_summary(&mut out, run),
            "training_step" => training_summary(&mut out, run),
            _ => {}
        }
    }
    out.push_str(
        "Medians of single synchronised calls; **x dense** = dense time / RBE time in the same \
         run (above 1 RBE is faster); **x bound** = RBE time / its compute bound (RBE's \
         multiply-adds, docs/math.md §3, at the best dense multiply-add rate of the same run). \
         The full tables (memory, WGPU, the legacy NdArray backend, weight generation) are in \
         [`benches/results/speed_table.md`](benches/results/speed_table.md).\n\n\
         ![speedup of RBE over dense vs batch](benches/results/speedup.png)\n",
    );
    out
}

/// `Flex`, `WGPU`, ... as prose names them.
fn backend_name(name: &str) -> String {
    match name {
        "flex" => "Flex".into(),
        "ndarray" => "NdArray (legacy)".into(),
        "wgpu" => "WGPU".into(),
        "cuda" => "CUDA".into(),
        other => other.into(),
    }
}

fn forward_summary(out: &mut String, run: &RunFile) {
    writeln!(
        out,
        "Forward of one layer on {}, {}:\n\n\
         | shape | B | batch | dense | RBE | x dense | bound | x bound |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|",
        backend_name(&run.backend.name),
        run.machine.cpu
    )
    .unwrap();
    let mut rows: Vec<&Record> = run
        .records
        .iter()
        .filter(|r| r.variant == "rbe-closed-form")
        .collect();
    rows.sort_by_key(|r| {
        (
            std::cmp::Reverse(r.d_input * r.d_output),
            std::cmp::Reverse(r.block),
            r.batch,
        )
    });
    for r in rows {
        writeln!(
            out,
            "| {}x{} | {} | {} | {} | {} | {} | {} | {} |",
            r.d_input,
            r.d_output,
            r.block.unwrap_or(0),
            r.batch,
            r.dense_median_ns.map_or("-".into(), ns),
            ns(r.median_ns),
            r.speedup_vs_dense
                .map_or("-".into(), |s| format!("{s:.2}x")),
            r.compute_bound
                .as_ref()
                .map_or("-".into(), |b| ns(b.bound_ns)),
            r.compute_bound
                .as_ref()
                .map_or("-".into(), |b| format!("{:.2}x", b.ratio)),
        )
        .unwrap();
    }
    out.push_str(&rate_note(run));
    out.push('\n');
}

fn training_summary(out: &mut String, run: &RunFile) {
    writeln!(
        out,
        "One training step (forward, loss, backward, Adam) on {}, {}; **x bound** is each \
         step over its compute bound (three products per layer at the run's best dense \
         matmul rate; the optimizer's update is not in it):\n\n\
         | model | batch | B | transitions | dense | dense x bound | RBE | RBE x bound | x dense |\n\
         |---|---:|---:|---|---:|---:|---:|---:|---:|",
        backend_name(&run.backend.name),
        run.machine.cpu
    )
    .unwrap();
    let dense_of = |r: &Record| {
        run.records.iter().find(|d| {
            d.variant == "dense"
                && (d.d_input, d.d_output, d.batch) == (r.d_input, r.d_output, r.batch)
        })
    };
    let bound = |r: Option<&Record>| {
        r.and_then(|r| r.compute_bound.as_ref())
            .map_or("-".into(), |b| format!("{:.1}x", b.ratio))
    };
    for r in run.records.iter().filter(|r| r.block.is_some()) {
        let model = if (r.d_input, r.d_output) == MLP_SHAPE {
            "MLP 784-256-10".to_string()
        } else {
            format!("{}x{} layer + MSE", r.d_input, r.d_output)
        };
        writeln!(
            out,
            "| {model} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.batch,
            r.block.unwrap_or(0),
            match r.transitions {
                Some(false) => "off".to_string(),
                // The sign blueprint's bits move by their own rule, named by the variant.
                None if r.variant.starts_with("rbe-sign")
                    || r.variant.starts_with("rbe-ternary") =>
                {
                    format!("- ({})", r.variant)
                }
                _ => "on".to_string(),
            },
            r.dense_median_ns.map_or("-".into(), ns),
            bound(dense_of(r)),
            ns(r.median_ns),
            bound(Some(r)),
            r.speedup_vs_dense
                .map_or("-".into(), |s| format!("{s:.2}x")),
        )
        .unwrap();
    }
    out.push('\n');
}
