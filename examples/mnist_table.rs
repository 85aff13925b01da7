//! Regenerates the MNIST table: dense, RBE and low-rank 784-256-10 ReLU classifiers trained
//! with Adam for 5 epochs on all 60,000 training images and tested on all 10,000 test images.
//!
//! ```text
//! cargo run --release --example mnist_table                   # writes docs/mnist.md
//! cargo run --release --example mnist_table -- --seeds 1 --lrs 1e-3,1e-2 --out /tmp/t.md
//! ```
//!
//! For every row the learning rate is chosen on a hold-out split carved from the training set
//! (train on the first 50,000 images, validate on the last 10,000); the test set is used only
//! for the final runs, which train on all 60,000 images with the chosen rate, once per seed.
//! Every RBE configuration appears with the paper's state transitions on and off. Each run's
//! JSON report is kept beside the table (`<out>.jsonl`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use rbe_burn::BitTraining;
use rbe_examples::backend::{BackendKind, dispatch};
use rbe_examples::mnist::data::{DataDir, TRAIN_LEN};
use rbe_examples::mnist::model::{ModelConfig, ModelKind, RbeFormat};
use rbe_examples::mnist::report::RunReport;
use rbe_examples::mnist::run::TrainJob;
use rbe_examples::mnist::training::TrainingConfig;
use rbe_examples::saved_pair;

/// Regenerate the MNIST dense / RBE / low-rank table.
#[derive(Parser, Debug)]
struct Cli {
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
    backend: BackendKind,
    /// Epochs of the final runs.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Learning rates tried for every row.
    #[arg(long, value_delimiter = ',', default_value = "1e-3,3e-3,1e-2,3e-2")]
    lrs: Vec<f64>,
    /// Epochs of each learning-rate trial.
    #[arg(long, default_value_t = 2)]
    select_epochs: usize,
    /// Training images held out (the last ones) to choose the learning rate on.
    #[arg(long, default_value_t = 10_000)]
    holdout: usize,
    /// Seeds of the final runs; the first one also seeds the trials.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Train on the first N training images only (a quick trial of this command; the
    /// table then says so).
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Directory with the four MNIST .gz files [default: $RBE_MNIST_DIR, else
    /// ../shared/data/mnist beside the repository; without local files burn-dataset
    /// downloads them].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where the runs' logs and models go [default: <temp dir>/rbe-mnist-table].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Run only the rows whose label contains one of these (comma list), e.g.
    /// `--rows dense,sign`; all rows by default.
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// The markdown file written; the run reports go to the same path with `.jsonl`.
    #[arg(long, default_value = "docs/mnist.md")]
    out: PathBuf,
}

/// One row of the table.
struct Row {
    label: String,
    model: ModelConfig,
}

impl Row {
    fn new(label: impl Into<String>, model: ModelConfig) -> Self {
        Self {
            label: label.into(),
            model,
        }
    }

    fn transitions(&self) -> &'static str {
        match (self.model.kind, self.model.transitions) {
            (ModelKind::Rbe, true) => "on",
            (ModelKind::Rbe, false) => "off",
            _ => "n/a",
        }
    }

    /// A file-system friendly name.
    fn slug(&self) -> String {
        let raw = format!("{} {}", self.label, self.transitions());
        raw.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .to_lowercase()
    }
}

/// The rows: dense, RBE at two block sizes (with and without a residual, in both layers or
/// the hidden one only), low-rank at two ranks, and the random-features control. Every RBE
/// configuration appears with transitions on and off.
fn rows() -> Vec<Row> {
    let rbe = |block: usize| ModelConfig::new(ModelKind::Rbe).with_block_size(block);
    let low_rank = |rank: usize| ModelConfig::new(ModelKind::Lowrank).with_rank(rank);
    let mut rows = vec![Row::new("dense", ModelConfig::new(ModelKind::Dense))];
    let rbe_rows = [
        ("RBE B=8, both layers", rbe(8)),
        ("RBE B=32, both layers", rbe(32)),
        (
            "RBE B=32 + rank-4 residual, both layers",
            rbe(32).with_residual_rank(4),
        ),
        ("RBE B=8 hidden + dense head", rbe(8).with_dense_head(true)),
        (
            "RBE B=32 hidden + dense head",
            rbe(32).with_dense_head(true),
        ),
    ];
    for (label, model) in rbe_rows {
        rows.push(Row::new(label, model.clone().with_transitions(true)));
        rows.push(Row::new(label, model.with_transitions(false)));
    }
    rows.push(Row::new("low-rank k=4, both layers", low_rank(4)));
    rows.push(Row::new(
        "low-rank k=16, both layers (head capped at rank 10)",
        low_rank(16),
    ));
    // The sign blueprint (docs/math.md §9): the same 16 bytes per 8x8 block as RBE B=8.
    let sign = |training| {
        rbe(8)
            .with_format(RbeFormat::SignBlueprint)
            .with_bit_training(training)
    };
    rows.push(Row::new(
        "sign blueprint 8x8, straight-through, both layers",
        sign(BitTraining::StraightThrough),
    ));
    rows.push(Row::new(
        "sign blueprint 8x8, Bop flips, both layers",
        sign(BitTraining::Flip),
    ));
    rows.push(Row::new(
        "control: RBE B=8 hidden frozen at init + dense head",
        // A frozen layer gets no transitions; nothing else here has RBE seeds.
        rbe(8)
            .with_dense_head(true)
            .with_freeze_hidden(true)
            .with_transitions(false),
    ));
    rows
}

/// Runs one training job in this process.
fn run_one(cli: &Cli, config: TrainingConfig, artifact_dir: PathBuf) -> Result<RunReport, String> {
    let job = TrainJob {
        config,
        artifact_dir,
        data_dir: DataDir::resolve(cli.data_dir.clone()),
        artifact_flag: "--work-dir",
        parallelism: Default::default(),
    };
    match dispatch(cli.backend, job) {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(err)) => Err(err.to_string()),
        Err(err) => Err(err.to_string()),
    }
}

/// What the table needs to know about one row.
struct RowResult {
    trials: Vec<Option<f64>>,
    lr: f64,
    finals: Vec<RunReport>,
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// The arguments this run was given, as they follow `--` on the cargo command line.
fn command_args() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        String::new()
    } else {
        format!(" -- {}", args.join(" "))
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// The 1-, 5- and 15-minute load averages, to show how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_string())
}

fn lr_text(lr: f64) -> String {
    format!("{lr:e}")
}

/// When and how the table was produced, for its header.
struct RunInfo {
    minutes: f64,
    load_at_start: String,
}

fn render(cli: &Cli, rows: &[Row], results: &[RowResult], info: &RunInfo) -> String {
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    let seeds: Vec<String> = cli.seeds.iter().map(u64::to_string).collect();
    let lrs: Vec<String> = cli.lrs.iter().map(|&lr| lr_text(lr)).collect();
    let dense_bytes = ModelConfig::new(ModelKind::Dense).dense_bytes();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# MNIST: dense vs RBE vs low-rank (784-256-10, ReLU, Adam)\n"
    );
    if let Some(limit) = cli.train_limit {
        let _ = writeln!(
            md,
            "**QUICK TRIAL, NOT THE TABLE: only the first {limit} training images were used.**\n"
        );
    }
    let _ = writeln!(
        md,
        "Generated by `cargo run --release --example mnist_table{}` on {} ({threads} logical \
         CPUs), backend `{}`, in {:.1} minutes (load average {} at the start, {} at the \
         end). Every number below comes from that run; the per-run JSON reports are in `{}`.\n",
        command_args(),
        cpu_model(),
        cli.backend.name(),
        info.minutes,
        info.load_at_start,
        load_average(),
        cli.out.with_extension("jsonl").display()
    );
    let _ = writeln!(
        md,
        "Setup: 784-256-10 MLP with ReLU, cross-entropy, Adam (Burn defaults: betas 0.9/0.999, \
         epsilon 1e-5) at a constant learning rate, batch {}, {} epoch(s) on all training images, \
         accuracy on all 10,000 test images; pixels normalised with mean 0.1307 and sd 0.3081. \
         The learning rate of each row is the best of {{{}}} by accuracy on the last {} training \
         images after {} epoch(s) on the others (seed {}); the test set plays no part in that \
         choice. The final runs use seeds {}: accuracy is their mean ± sample sd.\n",
        cli.batch_size,
        cli.epochs,
        lrs.join(", "),
        cli.holdout,
        cli.select_epochs,
        cli.seeds[0],
        seeds.join(", ")
    );
    let _ = writeln!(
        md,
        "| model | transitions | lr | test accuracy | weight bytes | total bytes | compression vs dense | s / epoch | peak RSS MiB |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for (row, result) in rows.iter().zip(results) {
        let accs: Vec<f64> = result
            .finals
            .iter()
            .filter_map(|r| r.test_accuracy)
            .map(|a| 100.0 * a)
            .collect();
        let (mean, sd) = mean_sd(&accs);
        let secs: Vec<f64> = result
            .finals
            .iter()
            .filter_map(|r| r.seconds_per_epoch)
            .collect();
        let first = &result.finals[0];
        let accuracy = if accs.len() > 1 {
            format!("{mean:.2} ± {sd:.2} %")
        } else {
            format!("{mean:.2} %")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {accuracy} | {} | {} | {:.1}x | {:.1} | {} |",
            row.label,
            row.transitions(),
            lr_text(result.lr),
            first.weight_bytes,
            first.total_param_bytes,
            first.compression_vs_dense,
            mean_sd(&secs).0,
            // Each run resets the peak first (`report::reset_peak_rss`).
            result
                .finals
                .iter()
                .filter_map(|r| r.peak_rss_mib)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
                .map_or("n/a".to_string(), |v| format!("{v:.0}"))
        );
    }
    let _ = writeln!(
        md,
        "\nBytes count every stored f32 and seed: RBE layers store 16 bytes per seed (one seed \
         per block, edge blocks included) plus any residual `U V`; low-rank layers store `U` and \
         `V`; dense layers `W`. Total bytes add the biases. The dense model stores {dense_bytes} \
         bytes. Seconds per epoch are wall time of the `Learner` (training plus its per-epoch \
         pass over the test set, which only monitors) averaged over the final runs; the runs \
         go one at a time, but other work on the machine (see the load average) slows them. The control row trains only the dense head on top of a hidden \
         RBE layer left at its random initialisation: the gap to the row above it is what the \
         hidden layer's own training adds.\n"
    );
    let _ = writeln!(md, "## Learning-rate selection (hold-out accuracy, %)\n");
    let _ = writeln!(
        md,
        "| model | transitions | {} | chosen |",
        lrs.iter()
            .map(|lr| format!("lr {lr}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(md, "|---|---|{}---|", "---|".repeat(lrs.len()));
    for (row, result) in rows.iter().zip(results) {
        let cells: Vec<String> = result
            .trials
            .iter()
            .map(|a| a.map_or("failed".to_string(), |a| format!("{:.2}", 100.0 * a)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            row.label,
            row.transitions(),
            cells.join(" | "),
            lr_text(result.lr)
        );
    }
    md
}

/// The markdown table and the run reports beside it (`<out>.jsonl`).
fn write_outputs(cli: &Cli, markdown: &str, reports: &[RunReport]) -> Result<(), String> {
    if let Some(folder) = cli.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    saved_pair::write_atomically(&cli.out, markdown)?;
    let jsonl: String = reports.iter().map(|r| r.to_json() + "\n").collect();
    saved_pair::write_atomically(&cli.out.with_extension("jsonl"), &jsonl)
}

/// Says which outputs of an earlier run this one replaces.
fn note_overwrites(cli: &Cli, work: &Path) {
    for path in [cli.out.clone(), cli.out.with_extension("jsonl")] {
        if path.exists() {
            eprintln!(
                "note: {} exists (an earlier table); this run replaces it after its first row \
                 (pass --out PATH to keep it)",
                path.display()
            );
        }
    }
    if work.is_dir() {
        eprintln!(
            "note: {} holds earlier runs' logs and models; this run replaces those of the \
             runs it repeats (pass --work-dir DIR to keep them)",
            work.display()
        );
    }
}

fn validate(cli: &Cli) -> Result<(), String> {
    if cli.lrs.is_empty() || cli.seeds.is_empty() {
        return Err("--lrs and --seeds need at least one value each".into());
    }
    if !(1..TRAIN_LEN).contains(&cli.holdout) {
        return Err(format!("--holdout must be in 1..{TRAIN_LEN}"));
    }
    if cli.epochs == 0 || cli.select_epochs == 0 {
        return Err("--epochs and --select-epochs must be >= 1".into());
    }
    Ok(())
}

fn run_table(cli: &Cli) -> Result<(), String> {
    validate(cli)?;
    let start = Instant::now();
    let load_at_start = load_average();
    let work = cli
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("rbe-mnist-table"));
    note_overwrites(cli, &work);
    let rows: Vec<Row> = rows()
        .into_iter()
        .filter(|row| {
            cli.rows.is_empty() || cli.rows.iter().any(|r| row.label.contains(r.as_str()))
        })
        .collect();
    let total = rows.len() * (cli.lrs.len() + cli.seeds.len());
    let mut done = 0;
    let mut reports = Vec::new();
    let mut results = Vec::new();
    let base = |model: &ModelConfig| {
        TrainingConfig::new(model.clone())
            .with_batch_size(cli.batch_size)
            .with_train_limit(cli.train_limit)
    };
    for row in &rows {
        let mut trials = Vec::new();
        for &lr in &cli.lrs {
            done += 1;
            let config = base(&row.model)
                .with_epochs(cli.select_epochs)
                .with_lr(lr)
                .with_seed(cli.seeds[0])
                .with_holdout(Some(cli.holdout));
            let dir = work.join(format!("{}-select-{}", row.slug(), lr_text(lr)));
            let outcome = run_one(cli, config, dir);
            log_run(done, total, row, lr, cli.seeds[0], &outcome, start);
            // A diverging trial is a result (that lr is unusable), not a reason to stop.
            trials.push(outcome.as_ref().ok().and_then(|r| r.valid_accuracy));
            if let Ok(report) = outcome {
                reports.push(report);
            }
        }
        let best = trials
            .iter()
            .zip(&cli.lrs)
            .filter_map(|(acc, &lr)| acc.map(|a| (a, lr)))
            // Strictly better only: ties keep the smaller (earlier) rate.
            .fold(None, |best: Option<(f64, f64)>, (a, lr)| match best {
                Some((b, _)) if b >= a => best,
                _ => Some((a, lr)),
            })
            .ok_or_else(|| format!("{}: every learning-rate trial failed", row.label))?
            .1;
        let mut finals = Vec::new();
        for &seed in &cli.seeds {
            done += 1;
            let config = base(&row.model)
                .with_epochs(cli.epochs)
                .with_lr(best)
                .with_seed(seed);
            let dir = work.join(format!("{}-final-seed{seed}", row.slug()));
            let outcome = run_one(cli, config, dir);
            log_run(done, total, row, best, seed, &outcome, start);
            let report = outcome?;
            reports.push(report.clone());
            finals.push(report);
        }
        results.push(RowResult {
            trials,
            lr: best,
            finals,
        });
        // Rewrite after every row, so a long run leaves a usable partial table behind.
        let info = RunInfo {
            minutes: start.elapsed().as_secs_f64() / 60.0,
            load_at_start: load_at_start.clone(),
        };
        let markdown = render(cli, &rows[..results.len()], &results, &info);
        write_outputs(cli, &markdown, &reports)?;
    }
    eprintln!("wrote {}", cli.out.display());
    Ok(())
}

fn log_run(
    done: usize,
    total: usize,
    row: &Row,
    lr: f64,
    seed: u64,
    outcome: &Result<RunReport, String>,
    start: Instant,
) {
    let what = match outcome {
        Ok(r) => match (r.valid_accuracy, r.test_accuracy) {
            (Some(v), _) => format!("hold-out {:.2} %", 100.0 * v),
            (_, Some(t)) => format!("test {:.2} %", 100.0 * t),
            _ => "no accuracy".to_string(),
        },
        Err(err) => format!("FAILED: {err}"),
    };
    // stdout, so the progress of the whole table reads apart from the per-run output.
    println!(
        "[{done}/{total}, {:.1} min] {} (transitions {}) lr {} seed {seed}: {what}",
        start.elapsed().as_secs_f64() / 60.0,
        row.label,
        row.transitions(),
        lr_text(lr)
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_table(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
