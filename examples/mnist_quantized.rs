//! Burn's own post-training quantization of the trained dense MNIST model: the baseline the
//! compressed rows of `docs/mnist.md` are compared against at the same bytes.
//!
//! ```text
//! cargo run --release --example mnist_quantized                # writes docs/mnist-quantized.md
//! cargo run --release --example mnist_quantized -- --seeds 1 --train-limit 2000 --out /tmp/q.md
//! ```
//!
//! For every seed the dense 784-256-10 classifier is trained as the MNIST table trains its
//! dense row (Adam, 5 epochs, the rate chosen there on the hold-out split, on `--backend`),
//! saved, reloaded on `--quant-backend` (WGPU, a CubeCL backend, by default), and evaluated
//! on all 10,000 test images unquantized and with its two weight matrices quantized
//! block-wise by Burn's `Quantizer` (see `rbe_examples::mnist::quantized`). One JSON line per
//! (seed, scheme) goes to stdout and to `<out>.jsonl`; the markdown table has mean ± sd over
//! the seeds.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use serde_json::json;

use rbe_examples::backend::{BackendKind, dispatch};
use rbe_examples::mnist::data::DataDir;
use rbe_examples::mnist::model::{ModelConfig, ModelKind};
use rbe_examples::mnist::quantized::{BlockAxis, QuantEval, QuantEvalJob, QuantGrid, WeightQuant};
use rbe_examples::mnist::run::TrainJob;
use rbe_examples::mnist::training::TrainingConfig;
use rbe_examples::saved_pair;

/// Train the dense MNIST model and evaluate Burn's block-wise post-training quantization.
#[derive(Parser, Debug)]
struct Cli {
    /// Backend to train on.
    #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
    backend: BackendKind,
    /// Backend to quantize and evaluate on.
    #[arg(long, value_enum, default_value_t = BackendKind::Wgpu)]
    quant_backend: BackendKind,
    /// Training seeds; the table gives mean ± sample sd over them.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Passes over the training images.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Adam's learning rate: the dense row's choice in docs/mnist.md.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Integer grids to quantize the weights to.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "q4f,q2f,q4s,q2s"
    )]
    grids: Vec<QuantGrid>,
    /// Weights per block (one f32 scale each).
    #[arg(long, default_value_t = 32)]
    block_size: usize,
    /// Train on the first N training images only (a quick trial; the table then says so).
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Evaluate on the first N test images only (a quick trial; the table then says so).
    #[arg(long, value_name = "N")]
    test_limit: Option<usize>,
    /// Directory with the four MNIST .gz files [default: $RBE_MNIST_DIR, else
    /// ../shared/data/mnist beside the repository].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where the runs' logs and models go [default: <temp dir>/rbe-mnist-quantized].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// The markdown file written; the JSON lines go to the same path with `.jsonl`.
    #[arg(long, default_value = "docs/mnist-quantized.md")]
    out: PathBuf,
}

/// One seed's results: the accuracy on the training backend and every scheme's evaluation.
struct SeedResult {
    seed: u64,
    train_accuracy: Option<f64>,
    evals: Vec<QuantEval>,
}

fn json_line(cli: &Cli, seed: u64, eval: &QuantEval) -> String {
    let axis = |a: BlockAxis| match a {
        BlockAxis::Input => "input",
        BlockAxis::Output => "output",
    };
    json!({
        "seed": seed,
        "scheme": eval.scheme,
        "test_accuracy": eval.accuracy.fraction(),
        "weight_bytes": eval.bytes.weight,
        "compression_vs_dense": eval.dense_bytes as f64 / eval.bytes.total() as f64,
        "total_param_bytes": eval.bytes.total(),
        "bits": eval.quant.map_or(32, |q| q.grid.bits()),
        "block_size": eval.quant.map(|q| q.block_size),
        "block_axes": eval.axes.map(|[h, o]| [axis(h), axis(o)]),
        "test_images": eval.accuracy.total,
        "backend": cli.quant_backend.name(),
        "train_backend": cli.backend.name(),
        "epochs": cli.epochs,
        "lr": cli.lr,
        "train_limit": cli.train_limit,
    })
    .to_string()
}

fn run_seed(cli: &Cli, seed: u64, work: &std::path::Path) -> Result<SeedResult, String> {
    let config = TrainingConfig::new(ModelConfig::new(ModelKind::Dense))
        .with_epochs(cli.epochs)
        .with_lr(cli.lr)
        .with_batch_size(cli.batch_size)
        .with_seed(seed)
        .with_train_limit(cli.train_limit)
        .with_test_limit(cli.test_limit);
    let train = TrainJob {
        config,
        artifact_dir: work.join(format!("dense-seed{seed}")),
        data_dir: DataDir::resolve(cli.data_dir.clone()),
        artifact_flag: "--work-dir",
        parallelism: Default::default(),
    };
    let report = dispatch(cli.backend, train)
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let schemes = cli
        .grids
        .iter()
        .map(|&grid| WeightQuant::new(grid, cli.block_size))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let eval = QuantEvalJob {
        path: PathBuf::from(&report.model_path),
        schemes,
        test_limit: cli.test_limit,
        data_dir: DataDir::resolve(cli.data_dir.clone()),
    };
    let evals = dispatch(cli.quant_backend, eval)
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(SeedResult {
        seed,
        train_accuracy: report.test_accuracy,
        evals,
    })
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

fn percent(values: &[f64]) -> String {
    let (mean, sd) = mean_sd(values);
    if values.len() > 1 {
        format!("{:.2} ± {:.2} %", 100.0 * mean, 100.0 * sd)
    } else {
        format!("{:.2} %", 100.0 * mean)
    }
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

fn render(cli: &Cli, results: &[SeedResult], minutes: f64) -> String {
    let seeds: Vec<String> = results.iter().map(|r| r.seed.to_string()).collect();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# MNIST: Burn's post-training quantization of the dense model (784-256-10)\n"
    );
    if cli.train_limit.is_some() || cli.test_limit.is_some() {
        let _ = writeln!(
            md,
            "**QUICK TRIAL, NOT THE TABLE: --train-limit {:?}, --test-limit {:?}.**\n",
            cli.train_limit, cli.test_limit
        );
    }
    let _ = writeln!(
        md,
        "Generated by `cargo run --release --example mnist_quantized{}` on {}, in {minutes:.1} \
         minutes. Every number below comes from that run; the per-(seed, scheme) JSON lines are \
         in `{}`.\n",
        command_args(),
        cpu_model(),
        cli.out.with_extension("jsonl").display()
    );
    let _ = writeln!(
        md,
        "Setup: the dense row of `docs/mnist.md` retrained per seed ({} epoch(s), Adam at lr \
         {:e}, batch {}, on `{}`), saved, reloaded on `{}` and evaluated on all test images \
         unquantized and with both weight matrices quantized by Burn 0.21's own \
         `burn::module::Quantizer` (min-max calibration, symmetric mode, one f32 scale per \
         block of {} weights, values packed into u32 by the CubeCL backend); biases stay f32. \
         Burn's `Linear` dequantizes a quantized weight on the device before its matmul. Seeds \
         {}: accuracy is their mean ± sample sd.\n",
        cli.epochs,
        cli.lr,
        cli.batch_size,
        cli.backend.name(),
        cli.quant_backend.name(),
        cli.block_size,
        seeds.join(", ")
    );
    let _ = writeln!(
        md,
        "| scheme | grid | bits / weight (with scales) | test accuracy | weight bytes | total bytes | compression vs dense |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    if results.iter().all(|r| r.train_accuracy.is_some()) {
        let accs: Vec<f64> = results.iter().filter_map(|r| r.train_accuracy).collect();
        let first = &results[0].evals[0];
        let _ = writeln!(
            md,
            "| f32, on `{}` (as trained) | f32 | 32 | {} | {} | {} | {:.1}x |",
            cli.backend.name(),
            percent(&accs),
            first.bytes.weight,
            first.bytes.total(),
            first.dense_bytes as f64 / first.bytes.total() as f64
        );
    }
    for (i, first) in results[0].evals.iter().enumerate() {
        let accs: Vec<f64> = results
            .iter()
            .map(|r| r.evals[i].accuracy.fraction())
            .collect();
        let weights = first.dense_bytes / 4; // every stored f32 of the dense model
        let (grid, label) = match first.quant {
            None => (
                "f32".to_string(),
                format!("f32, on `{}`", cli.quant_backend.name()),
            ),
            Some(q) => {
                let (lo, hi) = q.grid.value().range();
                (format!("{{{lo}..{hi}}} × scale"), first.scheme.clone())
            }
        };
        let matrix_weights = weights - first.bytes.bias / 4;
        let _ = writeln!(
            md,
            "| {label} | {grid} | {:.3} | {} | {} | {} | {:.1}x |",
            8.0 * first.bytes.weight as f64 / matrix_weights as f64,
            percent(&accs),
            first.bytes.weight,
            first.bytes.total(),
            first.dense_bytes as f64 / first.bytes.total() as f64
        );
    }
    let dense_bytes = ModelConfig::new(ModelKind::Dense).dense_bytes();
    let _ = writeln!(
        md,
        "\nBytes are counted as in `docs/mnist.md`: weight bytes stand for the two weight \
         matrices (here the packed values, `bits / 8` per weight, plus a 4-byte f32 scale per \
         block; the symmetric schemes store no offset), total bytes add the f32 biases (1064 \
         bytes), and compression is the dense model's {dense_bytes} bytes over the total. \
         Blocks run along each matrix's input axis where it splits into whole blocks (the head, \
         `[256, 10]`, is quantized as its `[10, 256]` transpose) and along the output axis \
         otherwise (the hidden `[784, 256]` matrix: 784 is no multiple of 32). `q*f` grids are \
         Burn's \"full range\" ones, `[-8, 7]` and `[-2, 1]`, with the scale \
         `2 max|w| / (hi - lo)`, so a block's largest weight, when positive, is clipped to \
         14/15 (q4f) or 2/3 (q2f) of itself; `q*s` grids are symmetric, `[-7, 7]` and \
         `[-1, 1]` (ternary, still stored in 2 bits)."
    );
    md
}

fn run(cli: &Cli) -> Result<(), String> {
    if cli.seeds.is_empty() || cli.grids.is_empty() {
        return Err("--seeds and --grids need at least one value each".into());
    }
    let start = Instant::now();
    let work = cli
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("rbe-mnist-quantized"));
    let mut results = Vec::new();
    let mut jsonl = String::new();
    for &seed in &cli.seeds {
        let result = run_seed(cli, seed, &work)?;
        for eval in &result.evals {
            let line = json_line(cli, seed, eval);
            println!("{line}");
            jsonl.push_str(&line);
            jsonl.push('\n');
        }
        results.push(result);
        // Rewrite after every seed, so a long run leaves a usable partial table behind.
        let markdown = render(cli, &results, start.elapsed().as_secs_f64() / 60.0);
        if let Some(folder) = cli.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        }
        saved_pair::write_atomically(&cli.out, &markdown)?;
        saved_pair::write_atomically(&cli.out.with_extension("jsonl"), &jsonl)?;
    }
    eprintln!("wrote {}", cli.out.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
