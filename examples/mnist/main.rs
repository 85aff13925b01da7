//! MNIST with dense, RBE and low-rank 784-256-10 ReLU classifiers, trained with burn-train.
//!
//! ```text
//! cargo run --release --example mnist -- --model dense           # Flex, the default CPU backend
//! cargo run --release --example mnist -- --model dense --backend wgpu
//! cargo run --release --example mnist -- --model rbe --block-size 8 --dense-head --lr 1e-2
//! cargo run --release --example mnist -- --model lowrank --rank 16
//! cargo run --release --example mnist -- --eval-only --load /tmp/rbe-mnist/model.rbe
//! cargo run --release --example mnist -- --model rbe --format sign --block-size 8 \
//!     --init-from /tmp/rbe-mnist-dense/model.rbe --epochs 1 --artifact-dir /tmp/rbe-mnist-init
//! ```
//!
//! `--init-from` starts from a trained dense model (saved by a `--model dense` run) instead of
//! a random one: its layers are encoded into the `--model` kind, evaluated, then trained
//! `--epochs` more epochs (0: only encoded); the JSON summary then also carries the dense
//! model's accuracy, the accuracy right after the encode and the encode's error.
//!
//! The data comes from the four canonical MNIST `.gz` files in `--data-dir` (or
//! `$RBE_MNIST_DIR`, or `../shared/data/mnist` beside the repository) or from burn-dataset's
//! cache folder; when neither has them, burn-dataset's `MnistDataset` downloads them.
//! Progress goes to stderr; the last line on stdout is a JSON summary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use rbe_burn::BitTraining;
use rbe_examples::backend::{BackendKind, dispatch};
use rbe_examples::mnist::data::DataDir;
use rbe_examples::mnist::init_from::InitFromJob;
use rbe_examples::mnist::model::{ModelConfig, ModelKind, RbeFormat};
use rbe_examples::mnist::run::{EvalJob, TrainJob};
use rbe_examples::mnist::training::{Parallelism, TrainingConfig};

/// `--format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Paper,
    Sign,
    Ternary,
}

/// `--bit-training`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Bits {
    Ste,
    Flip,
}

/// Train and evaluate dense, RBE and low-rank MLPs (784-256-10, ReLU, Adam) on MNIST.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Backend to run on.
    #[arg(long, value_enum, default_value_t = BackendKind::Flex)]
    backend: BackendKind,
    /// Layer type of the classifier.
    #[arg(long, value_enum, default_value_t = ModelKind::Rbe)]
    model: ModelKind,
    /// Side of the square RBE blocks (one 16-byte seed per block).
    #[arg(long, default_value_t = 8)]
    block_size: usize,
    /// Rank of the dense residual U V added to each RBE layer (0: pure RBE).
    #[arg(long, default_value_t = 0)]
    residual_rank: usize,
    /// Rank k of the low-rank layers (`--model lowrank`).
    #[arg(long, default_value_t = 16)]
    rank: usize,
    /// Keep the 10-way output layer a dense `Linear`.
    #[arg(long)]
    dense_head: bool,
    /// Turn the paper's state transitions off (sign format: freeze the bits).
    #[arg(long)]
    no_transitions: bool,
    /// What the RBE seeds' 128 bits mean: `paper` (two reals per block, the default),
    /// `sign` (one bit per cell of blocks of at most 64 cells, plus a scale and an offset)
    /// or `ternary` (a level in {-1, 0, +1} per cell of such blocks, plus an f16 scale).
    #[arg(long, value_enum, default_value_t = Format::Paper)]
    format: Format,
    /// How `--format sign` bits learn: `ste` (straight-through latent weights) or `flip`
    /// (Bop: flips driven by a moving average of the gradient, no latent).
    #[arg(long, value_enum, default_value_t = Bits::Ste)]
    bit_training: Bits,
    /// Bop's averaging weight `gamma` (`--bit-training flip`).
    #[arg(long, default_value_t = 1e-2)]
    bop_gamma: f64,
    /// Bop's flip threshold `tau` (`--bit-training flip`).
    #[arg(long, default_value_t = 1e-6)]
    bop_tau: f64,
    /// Keep the hidden layer at its random initialisation and train the head only (control).
    #[arg(long)]
    freeze_hidden: bool,
    /// Passes over the training images (with --init-from: after the encode; 0 only encodes).
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Images per optimizer step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Train on the first N training images only.
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Validate on the last N training images, kept out of training, instead of the test set
    /// (for choosing hyper-parameters: the test set is then not evaluated at all).
    #[arg(long, value_name = "N")]
    holdout: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long, value_name = "N")]
    test_limit: Option<usize>,
    /// Devices to train on, data parallel: each step takes one --batch-size batch per device
    /// and sums their gradients. CPU backends offer logical devices (the host listed N
    /// times, one thread each, up to its hardware threads); GPU backends their first N GPUs.
    #[arg(long, default_value_t = 1, value_name = "N")]
    devices: usize,
    /// With --devices N >= 2: every device keeps its own replica of the model and the
    /// optimizer, applies the summed gradients itself, and the replicas are checked to hold
    /// bit-identical parameters after every step (an error stops training). Without it,
    /// Burn's multi-device strategy keeps one model and optimizer on the first device.
    #[arg(long)]
    ddp: bool,
    /// Seed of the initial weights and the shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory with the four MNIST .gz files [default: $RBE_MNIST_DIR, else
    /// ../shared/data/mnist beside the repository; without local files burn-dataset
    /// downloads them].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Where the training logs and the model go [default: <temp dir>/rbe-mnist].
    #[arg(long, value_name = "DIR")]
    artifact_dir: Option<PathBuf>,
    /// Only reload the model given by --load and evaluate it.
    #[arg(long, requires = "load")]
    eval_only: bool,
    /// A model saved by a training run (`<artifact-dir>/model.rbe`).
    #[arg(long, value_name = "PATH", requires = "eval_only")]
    load: Option<PathBuf>,
    /// Start from the dense 784-256-10 model saved by a `--model dense` run
    /// (`<artifact-dir>/model.rbe`, with its model.json): encode its layers into the --model
    /// kind (rbe: --format, --block-size, --residual-rank, --no-transitions, --bit-training;
    /// lowrank: the truncated SVD at --rank; --dense-head keeps the head dense), evaluate, then
    /// train --epochs epochs from there. Any other model is refused and nothing is written.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["eval_only", "freeze_hidden", "holdout"])]
    init_from: Option<PathBuf>,
}

impl Cli {
    fn parallelism(&self) -> Parallelism {
        Parallelism {
            devices: self.devices,
            ddp: self.ddp,
        }
    }

    fn training_config(&self) -> TrainingConfig {
        let model = ModelConfig::new(self.model)
            .with_block_size(self.block_size)
            .with_residual_rank(self.residual_rank)
            .with_rank(self.rank)
            .with_dense_head(self.dense_head)
            .with_transitions(!self.no_transitions)
            .with_format(match self.format {
                Format::Paper => RbeFormat::Paper,
                Format::Sign => RbeFormat::SignBlueprint,
                Format::Ternary => RbeFormat::Ternary,
            })
            .with_bit_training(match self.bit_training {
                Bits::Ste => BitTraining::StraightThrough,
                Bits::Flip => BitTraining::Flip,
            })
            .with_freeze_hidden(self.freeze_hidden);
        TrainingConfig::new(model)
            .with_epochs(self.epochs)
            .with_batch_size(self.batch_size)
            .with_lr(self.lr)
            .with_seed(self.seed)
            .with_train_limit(self.train_limit)
            .with_holdout(self.holdout)
            .with_test_limit(self.test_limit)
            .with_bop_gamma(self.bop_gamma)
            .with_bop_tau(self.bop_tau)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data_dir = DataDir::resolve(cli.data_dir.clone());
    let artifact_dir = cli
        .artifact_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("rbe-mnist"));
    let outcome = match (&cli.load, &cli.init_from) {
        (_, Some(init_from)) => dispatch(
            cli.backend,
            InitFromJob {
                config: cli.training_config(),
                init_from: init_from.clone(),
                artifact_dir,
                data_dir,
                artifact_flag: "--artifact-dir",
                parallelism: cli.parallelism(),
            },
        ),
        (Some(path), None) => dispatch(
            cli.backend,
            EvalJob {
                path: path.clone(),
                test_limit: cli.test_limit,
                data_dir,
            },
        ),
        (None, None) => dispatch(
            cli.backend,
            TrainJob {
                config: cli.training_config(),
                artifact_dir,
                data_dir,
                artifact_flag: "--artifact-dir",
                parallelism: cli.parallelism(),
            },
        ),
    };
    match outcome {
        Ok(Ok(report)) => {
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Ok(Err(err)) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
