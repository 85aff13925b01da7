//! The dense vs RBE comparison table (`--table PATH`).
//!
//! Every configuration trains with the same architecture, steps, batches, learning rate and
//! seed; only the storage of the block projections changes.

use std::fmt::Write as _;

use super::args::TableRows;
use super::report::RunSummary;
use rbe_burn::BitTraining;
use rbe_examples::transformer::model::ProjectionKind;

/// The configurations of the requested row groups, in the order given: `Dense`; `Rbe` =
/// the paper format with blocks of 16 and 32, each with residual rank 0 and 8; `Sign` = the
/// sign blueprint with 8x8 blocks. A group named twice is trained once.
pub fn configurations(
    rows: &[TableRows],
    transitions: bool,
    bit_training: BitTraining,
) -> Vec<ProjectionKind> {
    let rbe = |block_size, residual_rank| ProjectionKind::Rbe {
        block_size,
        residual_rank,
        transitions,
    };
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for &row in rows {
        if seen.contains(&row) {
            continue;
        }
        seen.push(row);
        match row {
            TableRows::Dense => out.push(ProjectionKind::Dense),
            TableRows::Rbe => out.extend([rbe(16, 0), rbe(16, 8), rbe(32, 0), rbe(32, 8)]),
            TableRows::Sign => out.push(ProjectionKind::SignBlueprint {
                block_size: 8,
                bit_training,
            }),
        }
    }
    out
}

/// What the table's header states about how it was produced.
#[derive(Debug, Clone)]
pub struct TableContext {
    /// The command line that produced it.
    pub command: String,
    /// CPU model and cores.
    pub machine: String,
    /// Backend name.
    pub backend: String,
    /// Architecture and training settings, one line.
    pub settings: String,
    /// Wall-clock seconds for all runs.
    pub wall_s: f64,
    /// Load averages around the runs.
    pub load: String,
}

/// The markdown table, one row per run, with the gap to the dense run spelled out.
pub fn markdown(runs: &[RunSummary], context: &TableContext) -> String {
    let dense_bpc = runs
        .iter()
        .find(|r| r.projections == ProjectionKind::Dense)
        .map(RunSummary::val_bpc);
    let mut out = String::new();
    let _ = writeln!(out, "# Character-level transformer: dense vs RBE\n");
    let _ = writeln!(out, "- command: `{}`", context.command);
    let _ = writeln!(out, "- machine: {}", context.machine);
    let _ = writeln!(out, "- backend: {}", context.backend);
    let _ = writeln!(out, "- settings: {}", context.settings);
    let _ = writeln!(
        out,
        "- load average (1/5/15 min): {}; tokens/s is training throughput and drops when \
         other work shares the cores",
        context.load
    );
    let _ = writeln!(
        out,
        "- wall time: {:.1} min for all {} runs\n",
        context.wall_s / 60.0,
        runs.len()
    );
    let _ = writeln!(
        out,
        "| model | val bpc | vs dense | bytes | compression | projection compression | tokens/s |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|");
    for run in runs {
        let gap = match (dense_bpc, &run.projections) {
            (_, ProjectionKind::Dense) | (None, _) => "-".to_string(),
            (Some(dense), _) => describe_gap(run.val_bpc() - dense),
        };
        let _ = writeln!(
            out,
            "| {} | {:.4} | {} | {} | {:.2}x | {:.1}x | {:.0} |",
            run.label(),
            run.val_bpc(),
            gap,
            run.bytes.total,
            run.compression_vs_dense(),
            run.projection_compression(),
            run.tokens_per_s,
        );
    }
    if let Some(first) = runs.first() {
        let _ = writeln!(
            out,
            "\nBaselines on the same validation split, from training-split counts with add-one \
             smoothing: unigram {:.4} bpc, bigram (previous character only) {:.4} bpc; uniform \
             `log2(vocab)` {:.4} bpc.",
            first.unigram_bpc, first.bigram_bpc, first.uniform_bpc
        );
    }
    let _ = writeln!(
        out,
        "\"bytes\" counts every stored parameter of the whole model (embeddings, norms and \
         the dense LM head included; RBE layers count seeds, residual and bias). \
         \"projection compression\" is the same ratio over the attention and MLP \
         projections alone (6 per block), the layers RBE replaces."
    );
    out
}

/// `+0.1234 (RBE loses by 0.1234 bpc)` or the win, to four decimals.
fn describe_gap(delta: f64) -> String {
    if delta > 0.00005 {
        format!("+{delta:.4} (RBE loses by {delta:.4} bpc)")
    } else if delta < -0.00005 {
        format!("{delta:.4} (RBE wins by {:.4} bpc)", -delta)
    } else {
        "0.0000 (tie)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rows_are_the_five_readme_rows() {
        let rows = configurations(
            &[TableRows::Dense, TableRows::Rbe],
            true,
            BitTraining::StraightThrough,
        );
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0], ProjectionKind::Dense);
        assert!(
            rows[1..]
                .iter()
                .all(|p| matches!(p, ProjectionKind::Rbe { .. }))
        );
    }

    #[test]
    fn sign_rows_follow_the_order_given_once() {
        let rows = configurations(
            &[TableRows::Sign, TableRows::Dense, TableRows::Sign],
            true,
            BitTraining::Flip,
        );
        assert_eq!(
            rows,
            vec![
                ProjectionKind::SignBlueprint {
                    block_size: 8,
                    bit_training: BitTraining::Flip,
                },
                ProjectionKind::Dense,
            ]
        );
    }
}
