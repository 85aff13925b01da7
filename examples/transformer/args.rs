//! The command line.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};
use rbe_burn::BitTraining;
use rbe_examples::backend::BackendKind;

/// The text used when `--text` is not given, relative to the repository root.
pub const DEFAULT_TEXT: &str = "../shared/data/text/shakespeare.txt";

/// What the run does.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Train one model, evaluate, save, sample.
    Train,
    /// Train the table configurations (`--table-rows`) and write the markdown table here.
    Table(PathBuf),
    /// Load a checkpoint and sample.
    Generate(PathBuf),
    /// Compress a trained dense checkpoint, evaluate, fine-tune, evaluate, sample.
    InitFrom(PathBuf),
}

/// Trains a character-level GPT whose projections are RbeLinear layers (or dense Linear
/// with --dense), reports validation bits per character, saves it, and prints a sample and
/// one JSON line. Progress goes to stderr, results to stdout.
///
/// With --init-from, starts instead from a dense checkpoint this example saved with
/// --dense: compresses its projections (--compress-as), evaluates right after, fine-tunes
/// for --steps (optionally distilled from the dense model, --distill) and evaluates again;
/// nothing is saved.
///
/// The model defaults are sized for a 2-core CPU; a larger model is
/// `--layers 4 --d-model 256 --context 128`.
#[derive(Parser, Debug, Clone)]
#[command(version)]
pub struct Args {
    /// What the run does (derived from --table, --generate-only, --load and --init-from).
    #[arg(skip = Mode::Train)]
    pub mode: Mode,

    /// UTF-8 text, split 90/10 by position.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_TEXT, help_heading = "Data")]
    pub text: PathBuf,
    /// Use only the first N bytes of the text.
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Data")]
    pub max_bytes: Option<usize>,

    /// Dense `Linear` projections instead of `RbeLinear`.
    #[arg(long, conflicts_with = "init_from", help_heading = "Model")]
    pub dense: bool,
    /// What the RBE seeds' bits mean: the paper's CORDIC seed or the sign blueprint (one
    /// sign bit per weight, blocks of at most 8x8).
    #[arg(long, value_enum, default_value_t = Format::Paper, conflicts_with = "dense", help_heading = "Model")]
    pub format: Format,
    /// How the bits of a sign-blueprint model learn: straight-through latent weights or
    /// Bop-style flips (ignored by the paper format).
    #[arg(long, value_enum, default_value_t = BitRule::Ste, help_heading = "Model")]
    pub bit_training: BitRule,
    /// RBE block side [default: 32, or 8 with --format sign].
    #[arg(long, value_name = "B", value_parser = positive, help_heading = "Model")]
    block_size: Option<usize>,
    /// Rank of the dense low-rank residual per RBE layer.
    #[arg(long, value_name = "R", default_value_t = 0, help_heading = "Model")]
    pub residual_rank: usize,
    /// Turn the paper's state transitions off (they are on by default).
    #[arg(long = "no-transitions", action = ArgAction::SetFalse, help_heading = "Model")]
    pub transitions: bool,
    /// Make the LM head an `RbeLinear` too (dense by default); with --init-from, compress
    /// the head by --compress-as too.
    #[arg(long, help_heading = "Model")]
    pub compress_head: bool,
    /// Transformer blocks.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = positive, help_heading = "Model")]
    pub layers: usize,
    /// Residual width.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = positive, help_heading = "Model")]
    pub d_model: usize,
    /// Attention heads; must divide --d-model.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = positive, help_heading = "Model")]
    pub heads: usize,
    /// Characters per window.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = positive, help_heading = "Model")]
    pub context: usize,

    /// Backend (cuda needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = BackendKind::Flex, help_heading = "Training")]
    pub backend: BackendKind,
    /// Optimizer steps; 0 only with --init-from (compress and evaluate, no fine-tuning)
    /// [default: 600, or 0 with --compress-as burn-q4/burn-q2].
    #[arg(long, value_name = "N", help_heading = "Training")]
    steps: Option<usize>,
    /// Windows per step.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = positive, help_heading = "Training")]
    pub batch_size: usize,
    /// Peak learning rate of Adam (warmup, then cosine decay).
    #[arg(long, default_value_t = 3e-3, value_parser = positive_float, help_heading = "Training")]
    pub lr: f64,
    /// Seeds initialisation, batches and sampling.
    #[arg(long, default_value_t = 42, help_heading = "Training")]
    pub seed: u64,
    /// Evaluate on N windows spread over the validation split [default: all
    /// non-overlapping windows].
    #[arg(long, value_name = "N", default_value_t = usize::MAX, hide_default_value = true, value_parser = positive, help_heading = "Training")]
    pub eval_windows: usize,
    /// Progress interval in steps.
    #[arg(long, value_name = "N", default_value_t = 25, value_parser = positive, help_heading = "Training")]
    pub log_every: usize,
    /// Checkpoint stem: PATH.rbe + PATH.json, written together [default:
    /// <tmp>/rbe-transformer/<model>; a run says when it replaces an earlier checkpoint].
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "init_from",
        help_heading = "Training"
    )]
    pub save: Option<PathBuf>,
    /// Train the --table-rows configurations with these settings and write the comparison
    /// as markdown to PATH.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["generate_only", "load"], help_heading = "Training")]
    table: Option<PathBuf>,
    /// Rows of --table, comma-separated: `dense`, `rbe` (B=16/32 x residual 0/8) and
    /// `sign` (sign blueprint 8x8 with --bit-training).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "dense,rbe",
        requires = "table",
        help_heading = "Training"
    )]
    pub table_rows: Vec<TableRows>,

    /// Start from this dense checkpoint (stem of PATH.rbe + PATH.json, written by this
    /// example with --dense) instead of a fresh model. Its architecture must be what
    /// --layers, --d-model, --heads, --context and the text's vocabulary ask for. Its
    /// projections are compressed by --compress-as, then fine-tuned for --steps.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with_all = ["table", "generate_only", "load"],
        help_heading = "From a dense checkpoint"
    )]
    init_from: Option<PathBuf>,
    /// How --init-from compresses the projections: `rbe` encodes them into seeds with
    /// --format, --block-size, --residual-rank, --no-transitions and --bit-training;
    /// `lowrank` takes the truncated SVD at --rank; `burn-q4`/`burn-q2` are Burn's
    /// post-training quantization (blocks of 32, f32 scales; evaluation only).
    #[arg(
        long,
        value_enum,
        default_value_t = CompressAs::Rbe,
        requires = "init_from",
        help_heading = "From a dense checkpoint"
    )]
    pub compress_as: CompressAs,
    /// Rank K of each projection for --compress-as lowrank.
    #[arg(
        long,
        value_name = "K",
        value_parser = positive,
        required_if_eq("compress_as", "lowrank"),
        help_heading = "From a dense checkpoint"
    )]
    pub rank: Option<usize>,
    /// Fine-tune on (1 - w) cross-entropy + w T² KL(teacher ‖ student) with the dense
    /// checkpoint as the teacher (T = --distill-temperature, w = --distill-weight).
    #[arg(long, requires = "init_from", help_heading = "From a dense checkpoint")]
    pub distill: bool,
    /// Softmax temperature T of --distill; > 0.
    #[arg(long, value_name = "T", default_value_t = 2.0, value_parser = positive_float, requires = "distill", help_heading = "From a dense checkpoint")]
    pub distill_temperature: f64,
    /// Weight w of the KL term of --distill, in [0, 1].
    #[arg(long, value_name = "W", default_value_t = 0.5, value_parser = unit_interval, requires = "distill", help_heading = "From a dense checkpoint")]
    pub distill_weight: f64,

    /// Load a checkpoint and only generate.
    #[arg(long, requires = "load", help_heading = "Generation")]
    generate_only: bool,
    /// Checkpoint stem written by --save.
    #[arg(
        long,
        value_name = "PATH",
        requires = "generate_only",
        help_heading = "Generation"
    )]
    load: Option<PathBuf>,
    /// Text the sample continues.
    #[arg(
        long,
        default_value = "\n",
        hide_default_value = true,
        help_heading = "Generation"
    )]
    pub prompt: String,
    /// Sampling temperature, 0 = greedy.
    #[arg(long, default_value_t = 0.8, value_parser = temperature, help_heading = "Generation")]
    pub temperature: f64,
    /// Characters to generate.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 300,
        help_heading = "Generation"
    )]
    pub sample_len: usize,
}

/// The `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The paper's seed: `(r, theta)` and CORDIC bits per block.
    Paper,
    /// The sign blueprint: one sign bit per weight, `(alpha, mu)` per block.
    Sign,
    /// Ternary: a level in {-1, 0, +1} per weight, an f16 scale per block.
    Ternary,
}

/// The `--bit-training` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BitRule {
    /// Straight-through latent weights, trained by Adam.
    Ste,
    /// Bop-style flips driven by a moving average of the gradient.
    Flip,
}

impl From<BitRule> for BitTraining {
    fn from(rule: BitRule) -> Self {
        match rule {
            BitRule::Ste => Self::StraightThrough,
            BitRule::Flip => Self::Flip,
        }
    }
}

/// The `--compress-as` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressAs {
    /// RBE seeds (paper or sign format, from --format).
    Rbe,
    /// Truncated SVD of rank --rank.
    Lowrank,
    /// Burn's 4-bit block quantization (q4f, blocks of 32).
    BurnQ4,
    /// Burn's 2-bit block quantization (q2f, blocks of 32).
    BurnQ2,
}

/// The `--table-rows` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableRows {
    /// Dense `Linear` projections.
    Dense,
    /// The paper format, B=16/32 x residual rank 0/8.
    Rbe,
    /// The sign blueprint, 8x8 blocks, bits trained by --bit-training.
    Sign,
}

impl Args {
    /// The block side: `--block-size`, or the format's default (32 for the paper's seed, 8,
    /// the largest square that fits 64 bits, for the sign blueprint).
    pub fn block_size(&self) -> usize {
        self.block_size.unwrap_or(match self.format {
            Format::Paper => 32,
            Format::Sign | Format::Ternary => 8,
        })
    }

    /// Optimizer steps: `--steps`, else 0 for the evaluation-only quantized methods of
    /// --init-from and 600 otherwise.
    pub fn steps(&self) -> usize {
        self.steps.unwrap_or(
            if self.init_from.is_some()
                && matches!(self.compress_as, CompressAs::BurnQ4 | CompressAs::BurnQ2)
            {
                0
            } else {
                600
            },
        )
    }

    /// Parses the process arguments; clap prints help or the error and exits on failure.
    pub fn from_command_line() -> Self {
        use clap::CommandFactory;
        let mut args = Self::parse();
        let invalid = |message: String| {
            Self::command()
                .error(clap::error::ErrorKind::ValueValidation, message)
                .exit()
        };
        if !args.d_model.is_multiple_of(args.heads) {
            invalid(format!(
                "--heads {} must divide --d-model {}",
                args.heads, args.d_model
            ));
        }
        if args.steps == Some(0) && args.init_from.is_none() {
            invalid(
                "--steps 0 only makes sense with --init-from (evaluate right after compression)"
                    .into(),
            );
        }
        args.mode = match (&args.load, &args.table, &args.init_from) {
            (Some(path), _, _) => Mode::Generate(path.clone()),
            (None, Some(path), _) => Mode::Table(path.clone()),
            (None, None, Some(path)) => Mode::InitFrom(path.clone()),
            (None, None, None) => Mode::Train,
        };
        args
    }
}

fn positive(v: &str) -> Result<usize, String> {
    match v.parse::<usize>().map_err(|e| e.to_string())? {
        0 => Err("must be positive".into()),
        n => Ok(n),
    }
}

fn positive_float(v: &str) -> Result<f64, String> {
    let x: f64 = v.parse().map_err(|e| format!("{e}"))?;
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err("must be a positive number".into())
    }
}

fn unit_interval(v: &str) -> Result<f64, String> {
    let x: f64 = v.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err("must be in [0, 1]".into())
    }
}

fn temperature(v: &str) -> Result<f64, String> {
    let x: f64 = v.parse().map_err(|e| format!("{e}"))?;
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err("must be >= 0".into())
    }
}
