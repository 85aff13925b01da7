//! The command line.

use std::path::PathBuf;
use std::str::FromStr;

/// The text used when `--text` is not given, relative to the repository root.
pub const DEFAULT_TEXT: &str = "../shared/data/text/shakespeare.txt";

pub const USAGE: &str = "\
usage: transformer [OPTIONS]

Trains a character-level GPT whose projections are RbeLinear layers (or dense Linear with
--dense), reports validation bits per character, saves it, and prints a sample and one JSON
line. Progress goes to stderr, results to stdout.

data:
  --text PATH          UTF-8 text, split 90/10 by position (default ../shared/data/text/shakespeare.txt)
  --max-bytes N        use only the first N bytes of the text
model (defaults sized for a 2-core CPU; the issue's larger model is
--layers 4 --d-model 256 --context 128):
  --dense              dense Linear projections instead of RbeLinear
  --block-size B       RBE block side (default 32)
  --residual-rank R    rank of the dense low-rank residual per RBE layer (default 0)
  --no-transitions     do not apply the paper's state transitions
  --compress-head      make the LM head an RbeLinear too (dense by default)
  --layers N           transformer blocks (default 2)
  --d-model N          residual width (default 128)
  --heads N            attention heads (default 4)
  --context N          characters per window (default 64)
training:
  --backend NAME       ndarray | wgpu | cuda (cuda needs --features cuda; default ndarray)
  --steps N            optimizer steps (default 600)
  --batch-size N       windows per step (default 32)
  --lr LR              peak learning rate of Adam (default 0.003)
  --seed S             seeds initialisation, batches and sampling (default 42)
  --eval-windows N     evaluate on N windows spread over the validation split
                       (default: all non-overlapping windows)
  --log-every N        progress interval in steps (default 25)
  --save PATH          checkpoint stem: PATH.mpk + PATH.json (default <tmp>/rbe-transformer/<model>)
  --table PATH         train dense and RBE B=16/32 x residual 0/8 with these settings and
                       write the comparison as markdown to PATH
generation:
  --generate-only      load a checkpoint and only generate (needs --load)
  --load PATH          checkpoint stem written by --save
  --prompt TEXT        text the sample continues (default \"\\n\")
  --temperature T      sampling temperature, 0 = greedy (default 0.8)
  --sample-len N       characters to generate (default 300)
  -h, --help           this text";

/// Which backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `burn::backend::NdArray<f32>` on the CPU.
    NdArray,
    /// `burn::backend::Wgpu<f32, i32>` (Vulkan, Metal, DX12 or a software adapter).
    Wgpu,
    /// `burn::backend::Cuda<f32, i32>`, with the `cuda` feature.
    Cuda,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::NdArray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ndarray" => Ok(Self::NdArray),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(format!(
                "unknown backend {other:?}; expected ndarray, wgpu or cuda"
            )),
        }
    }
}

/// What the run does.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Train one model, evaluate, save, sample.
    Train,
    /// Train the five table configurations and write the markdown table here.
    Table(PathBuf),
    /// Load a checkpoint and sample.
    Generate(PathBuf),
}

/// Every option, parsed.
#[derive(Debug, Clone)]
pub struct Args {
    pub mode: Mode,
    pub text: PathBuf,
    pub max_bytes: Option<usize>,
    pub backend: BackendKind,
    pub dense: bool,
    pub block_size: usize,
    pub residual_rank: usize,
    pub transitions: bool,
    pub compress_head: bool,
    pub layers: usize,
    pub d_model: usize,
    pub heads: usize,
    pub context: usize,
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    pub eval_windows: usize,
    pub log_every: usize,
    pub save: Option<PathBuf>,
    pub prompt: String,
    pub temperature: f64,
    pub sample_len: usize,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            mode: Mode::Train,
            text: PathBuf::from(DEFAULT_TEXT),
            max_bytes: None,
            backend: BackendKind::NdArray,
            dense: false,
            block_size: 32,
            residual_rank: 0,
            transitions: true,
            compress_head: false,
            layers: 2,
            d_model: 128,
            heads: 4,
            context: 64,
            steps: 600,
            batch_size: 32,
            lr: 3e-3,
            seed: 42,
            eval_windows: usize::MAX,
            log_every: 25,
            save: None,
            prompt: "\n".into(),
            temperature: 0.8,
            sample_len: 300,
        }
    }
}

/// `None` for `--help`, the options otherwise.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut out = Args::default();
    let (mut generate_only, mut load, mut table) = (false, None, None);
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--text" => out.text = PathBuf::from(value()?),
            "--max-bytes" => out.max_bytes = Some(positive(&flag, &value()?)?),
            "--backend" => out.backend = value()?.parse()?,
            "--dense" => out.dense = true,
            "--block-size" => out.block_size = positive(&flag, &value()?)?,
            "--residual-rank" => out.residual_rank = number(&flag, &value()?)?,
            "--no-transitions" => out.transitions = false,
            "--compress-head" => out.compress_head = true,
            "--layers" => out.layers = positive(&flag, &value()?)?,
            "--d-model" => out.d_model = positive(&flag, &value()?)?,
            "--heads" => out.heads = positive(&flag, &value()?)?,
            "--context" => out.context = positive(&flag, &value()?)?,
            "--steps" => out.steps = positive(&flag, &value()?)?,
            "--batch-size" => out.batch_size = positive(&flag, &value()?)?,
            "--lr" => out.lr = positive_float(&flag, &value()?)?,
            "--seed" => out.seed = number(&flag, &value()?)?,
            "--eval-windows" => out.eval_windows = positive(&flag, &value()?)?,
            "--log-every" => out.log_every = positive(&flag, &value()?)?,
            "--save" => out.save = Some(PathBuf::from(value()?)),
            "--table" => table = Some(PathBuf::from(value()?)),
            "--generate-only" => generate_only = true,
            "--load" => load = Some(PathBuf::from(value()?)),
            "--prompt" => out.prompt = value()?,
            "--temperature" => {
                let v = value()?;
                out.temperature = number::<f64>(&flag, &v)?;
                if !(out.temperature.is_finite() && out.temperature >= 0.0) {
                    return Err(format!("--temperature must be >= 0, got {v}"));
                }
            }
            "--sample-len" => out.sample_len = number(&flag, &value()?)?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if !out.d_model.is_multiple_of(out.heads) {
        return Err(format!(
            "--heads {} must divide --d-model {}",
            out.heads, out.d_model
        ));
    }
    out.mode = match (generate_only, load, table) {
        (true, Some(path), None) => Mode::Generate(path),
        (true, None, _) => return Err("--generate-only needs --load PATH".into()),
        (false, Some(_), _) => return Err("--load is only used with --generate-only".into()),
        (true, Some(_), Some(_)) => {
            return Err("--table and --generate-only exclude each other".into());
        }
        (false, None, Some(path)) => Mode::Table(path),
        (false, None, None) => Mode::Train,
    };
    Ok(Some(out))
}

fn number<T: FromStr>(flag: &str, v: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    v.parse().map_err(|e| format!("{flag} {v}: {e}"))
}

fn positive(flag: &str, v: &str) -> Result<usize, String> {
    match number::<usize>(flag, v)? {
        0 => Err(format!("{flag} must be positive")),
        n => Ok(n),
    }
}

fn positive_float(flag: &str, v: &str) -> Result<f64, String> {
    let x = number::<f64>(flag, v)?;
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(format!("{flag} must be a positive number, got {v}"))
    }
}
