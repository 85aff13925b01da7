//! A character-level GPT whose attention and MLP projections are `RbeLinear` layers.
//!
//! ```text
//! # train one model (RBE, 32x32 blocks), save it, print a sample and one JSON line
//! cargo run --release --example transformer -- --block-size 32 --residual-rank 0
//! # the dense baseline with the same settings
//! cargo run --release --example transformer -- --dense
//! # reload and sample
//! cargo run --release --example transformer -- --generate-only --load /tmp/rbe-transformer/rbe-b32-r0
//! # the sign-blueprint format (one sign bit per weight, 8x8 blocks), straight-through bits
//! cargo run --release --example transformer -- --format sign --bit-training ste
//! # start from a trained dense checkpoint: encode into sign seeds, evaluate, fine-tune 200
//! # steps distilled from the dense model (T = 2, w = 0.5), evaluate again
//! cargo run --release --example transformer -- --init-from /tmp/rbe-transformer/dense --format sign --steps 200 --distill
//! # the README table: dense vs RBE B=16/32 x residual rank 0/8
//! scripts/transformer_table.sh
//! # dense vs sign blueprint only
//! cargo run --release --example transformer -- --table /tmp/sign.md --table-rows dense,sign
//! ```
//!
//! The text is split 90/10 by position; the vocabulary comes from the training part and
//! every other character maps to `<unk>`. Validation loss is reported in nats and bits per
//! character, next to the unigram and uniform baselines.
//!
//! The default model (2 layers, d_model 128, 4 heads, context 64) is sized so a run
//! finishes in minutes on a 2-core CPU; `--layers 4 --d-model 256 --context 128` gives a
//! larger model, for machines with a GPU (`--backend wgpu` or `cuda`).

mod args;
mod generate;
mod report;
mod table;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use rbe::RbeBackend;

use args::{Args, CompressAs, Format, Mode};
use generate::SampleConfig;
use rbe_examples::backend::{BackendJob, BackendKind, dispatch};
use rbe_examples::quantized_linear::QuantGrid;
use rbe_examples::saved_pair;
use rbe_examples::transformer::checkpoint::{self, CheckpointMeta};
use rbe_examples::transformer::data::{self, Corpus};
use rbe_examples::transformer::finetune::{self, FinetuneConfig};
use rbe_examples::transformer::method::CompressMethod;
use rbe_examples::transformer::model::{Gpt, GptConfig, ProjectionKind};
use rbe_examples::transformer::training::{self, Distillation, Progress, TrainingConfig};
use report::RunSummary;

type AnyError = Box<dyn Error>;

fn main() -> ExitCode {
    let args = Args::from_command_line();
    match dispatch(args.backend, App(&args)).map_err(AnyError::from) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) | Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The requested mode, with the chosen backend `I` for inference and `Autodiff<I>` for
/// training.
struct App<'a>(&'a Args);

impl BackendJob for App<'_> {
    type Output = Result<(), AnyError>;

    fn run<I: RbeBackend>(self, device: I::Device, _: BackendKind) -> Self::Output {
        let args = self.0;
        match &args.mode {
            Mode::Generate(path) => generate_only::<I>(args, path, &device),
            Mode::Train => train_and_report::<I>(args, &device),
            Mode::Table(path) => write_table::<I>(args, path, &device),
            Mode::InitFrom(path) => init_from_and_report::<I>(args, path, &device),
        }
    }
}

fn load_corpus(args: &Args) -> Result<Corpus, AnyError> {
    let text = resolve_text(&args.text);
    let corpus = Corpus::load(&text, args.max_bytes, args.context).map_err(|err| {
        if args.text == Path::new(args::DEFAULT_TEXT) {
            format!("{err} (this is the default text; pass --text PATH)")
        } else {
            err.to_string()
        }
    })?;
    eprintln!(
        "text: {} ({} train / {} validation characters, vocabulary {} incl. <unk>, \
         {} validation characters outside it)",
        text.display(),
        corpus.train.len(),
        corpus.valid.len(),
        corpus.vocab.len(),
        corpus
            .valid
            .iter()
            .filter(|&&id| id == data::UNK_ID)
            .count(),
    );
    Ok(corpus)
}

/// The default text is relative to the repository root; from another directory, fall back
/// to the same file beside this checkout.
fn resolve_text(text: &Path) -> PathBuf {
    if text == Path::new(args::DEFAULT_TEXT) && !text.exists() {
        let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join(args::DEFAULT_TEXT);
        if beside.exists() {
            return beside;
        }
    }
    text.to_path_buf()
}

/// The projections the flags ask for.
fn projection_kind(args: &Args) -> ProjectionKind {
    match (args.dense, args.format) {
        (true, _) => ProjectionKind::Dense,
        (false, Format::Paper) => ProjectionKind::Rbe {
            block_size: args.block_size(),
            residual_rank: args.residual_rank,
            transitions: args.transitions,
        },
        (false, Format::Sign) => ProjectionKind::SignBlueprint {
            block_size: args.block_size(),
            bit_training: args.bit_training.into(),
        },
        (false, Format::Ternary) => ProjectionKind::Ternary {
            block_size: args.block_size(),
            bit_training: args.bit_training.into(),
        },
    }
}

fn model_config(args: &Args, corpus: &Corpus, projections: ProjectionKind) -> GptConfig {
    let head = match (&projections, args.compress_head) {
        (
            ProjectionKind::Rbe { .. }
            | ProjectionKind::SignBlueprint { .. }
            | ProjectionKind::Ternary { .. },
            true,
        ) => projections.clone(),
        _ => ProjectionKind::Dense,
    };
    GptConfig::new(
        corpus.vocab.len(),
        args.context,
        args.d_model,
        args.layers,
        args.heads,
        projections,
    )
    .with_head(head)
}

fn training_config(args: &Args) -> TrainingConfig {
    TrainingConfig::new(args.steps(), args.batch_size, args.lr)
        .with_seed(args.seed)
        .with_log_every(args.log_every)
}

/// Trains one configuration and evaluates it; returns the inference copy of the model.
fn train_one<I: RbeBackend>(
    args: &Args,
    corpus: &Corpus,
    config: &GptConfig,
    device: &I::Device,
) -> Result<(RunSummary, Gpt<I>), AnyError> {
    <Autodiff<I> as Backend>::seed(device, args.seed);
    let model = config.init::<Autodiff<I>>(device)?;
    let mut summary = RunSummary {
        projections: config.projections.clone(),
        compressed_head: config.head != ProjectionKind::Dense,
        steps: args.steps(),
        train_loss: f64::NAN,
        val_loss: f64::NAN,
        val_chars: data::eval_windows(corpus.valid.len(), config.context, args.eval_windows).len()
            * config.context,
        unigram_bpc: corpus.unigram_bpc(),
        bigram_bpc: corpus.bigram_bpc(),
        uniform_bpc: corpus.uniform_bpc(),
        bytes: model.bytes(),
        tokens_per_s: 0.0,
        train_s: 0.0,
        backend: args.backend.name(),
        init: None,
    };
    let label = summary.label();
    eprintln!(
        "[{label}] {} layers, d_model {}, {} heads, context {}; {} bytes stored, \
         {:.2}x smaller than dense",
        config.n_layers,
        config.d_model,
        config.n_heads,
        config.context,
        summary.bytes.total,
        summary.compression_vs_dense(),
    );
    let trained = training::train(
        model,
        corpus,
        &training_config(args),
        None,
        device,
        progress(&label),
    )?;
    summary.val_loss = training::evaluate(&trained.model, &corpus.valid, args.eval_windows);
    summary.train_loss = trained.train_loss;
    summary.tokens_per_s = trained.tokens_per_s;
    summary.train_s = trained.train_s;
    Ok((summary, trained.model.valid()))
}

/// Prints one progress line to stderr.
fn progress(label: &str) -> impl FnMut(&Progress) + '_ {
    move |p| {
        eprintln!(
            "[{label}] step {:>5}/{}  train loss {:.4}  lr {:.2e}  {:.0} tok/s  {:.0} s",
            p.step, p.steps, p.loss, p.lr, p.tokens_per_s, p.elapsed_s
        );
    }
}

/// How `--compress-as` (and, for `rbe`, the model flags) compress the projections.
fn compress_method(args: &Args) -> CompressMethod {
    match args.compress_as {
        CompressAs::Rbe => CompressMethod::Rbe(projection_kind(args)),
        // clap requires --rank with lowrank; 0 is refused downstream with a typed error.
        CompressAs::Lowrank => CompressMethod::LowRank {
            rank: args.rank.unwrap_or(0),
        },
        CompressAs::BurnQ4 => CompressMethod::BurnQuant(QuantGrid::Q4f),
        CompressAs::BurnQ2 => CompressMethod::BurnQuant(QuantGrid::Q2f),
    }
}

/// `--init-from`: compress the dense checkpoint, evaluate, fine-tune, evaluate, sample.
fn init_from_and_report<I: RbeBackend>(
    args: &Args,
    checkpoint: &Path,
    device: &I::Device,
) -> Result<(), AnyError> {
    let corpus = load_corpus(args)?;
    let distill = if args.distill {
        Some(Distillation::new(
            args.distill_temperature,
            args.distill_weight,
        )?)
    } else {
        None
    };
    let config = FinetuneConfig {
        checkpoint: checkpoint.to_path_buf(),
        architecture: model_config(args, &corpus, ProjectionKind::Dense),
        method: compress_method(args),
        compress_head: args.compress_head,
        training: training_config(args),
        distill,
        eval_windows: args.eval_windows,
        backend: args.backend.name(),
    };
    <Autodiff<I> as Backend>::seed(device, args.seed);
    let label = format!("{} from dense", config.method.name());
    eprintln!(
        "[{label}] {} from {}, {} steps{}",
        config.method.name(),
        checkpoint.display(),
        config.training.steps,
        distill.map_or_else(String::new, |d| format!(
            ", distilled (T = {}, w = {})",
            d.temperature, d.weight
        )),
    );
    let finetuned = finetune::run::<I>(&config, &corpus, device, progress(&label))?;
    let sample = generate::generate(&finetuned.model, &corpus.vocab, &sample_config(args))?;
    println!("{}", finetuned.summary.text());
    print_sample(&sample, args);
    println!("{}", finetuned.summary.json());
    Ok(())
}

fn sample_config(args: &Args) -> SampleConfig {
    SampleConfig {
        prompt: args.prompt.clone(),
        len: args.sample_len,
        temperature: args.temperature,
        seed: args.seed,
    }
}

fn print_sample(text: &str, args: &Args) {
    println!(
        "--- sample (temperature {}, seed {}) ---\n{text}\n--- end of sample ---",
        args.temperature, args.seed
    );
}

fn default_save_path(projections: &ProjectionKind) -> PathBuf {
    let name = match *projections {
        ProjectionKind::Dense => "dense".to_string(),
        ProjectionKind::Rbe {
            block_size,
            residual_rank,
            ..
        } => format!("rbe-b{block_size}-r{residual_rank}"),
        ProjectionKind::SignBlueprint {
            block_size,
            bit_training,
        } => format!(
            "sign-b{block_size}-{}",
            report::bit_training_name(bit_training)
        ),
        ProjectionKind::Ternary {
            block_size,
            bit_training,
        } => format!(
            "ternary-b{block_size}-{}",
            report::bit_training_name(bit_training)
        ),
    };
    std::env::temp_dir().join("rbe-transformer").join(name)
}

fn train_and_report<I: RbeBackend>(args: &Args, device: &I::Device) -> Result<(), AnyError> {
    let corpus = load_corpus(args)?;
    let config = model_config(args, &corpus, projection_kind(args));
    let path = args
        .save
        .clone()
        .unwrap_or_else(|| default_save_path(&config.projections));
    let earlier = checkpoint::exists::<I>(&path);
    let weights_file = checkpoint::paths::<I>(&path).weights;
    if earlier {
        eprintln!(
            "note: {} (and its .json) holds an earlier run's checkpoint; this run replaces it \
             when training succeeds{}",
            weights_file.display(),
            if args.save.is_none() {
                " (pass --save PATH to keep it)"
            } else {
                ""
            }
        );
    }
    let (summary, model) = train_one::<I>(args, &corpus, &config, device).map_err(|err| {
        if earlier {
            format!(
                "{err}; nothing was saved, {} keeps the earlier checkpoint",
                weights_file.display()
            )
        } else {
            format!("{err}; nothing was saved")
        }
    })?;

    let sample = generate::generate(&model, &corpus.vocab, &sample_config(args))?;
    let meta = CheckpointMeta::new(config, corpus.vocab.as_string(), args.steps());
    let weights = checkpoint::save(model, &meta, &path)?;

    println!("{}", summary.text());
    println!(
        "saved            {} (+ .json with the architecture and vocabulary)",
        weights.display()
    );
    print_sample(&sample, args);
    println!("{}", summary.json());
    Ok(())
}

fn generate_only<I: RbeBackend>(
    args: &Args,
    path: &Path,
    device: &I::Device,
) -> Result<(), AnyError> {
    let (model, vocab, meta) = checkpoint::load::<I>(path, device)?;
    let unknown = vocab
        .encode(&args.prompt)
        .iter()
        .filter(|&&id| id == data::UNK_ID)
        .count();
    eprintln!(
        "loaded {} ({} layers, d_model {}, {:?}; trained {} steps){}",
        path.display(),
        meta.model.n_layers,
        meta.model.d_model,
        meta.model.projections,
        meta.steps,
        if unknown > 0 {
            format!("; {unknown} prompt characters are outside the vocabulary and map to <unk>")
        } else {
            String::new()
        }
    );
    print_sample(
        &generate::generate(&model, &vocab, &sample_config(args))?,
        args,
    );
    Ok(())
}

fn write_table<I: RbeBackend>(
    args: &Args,
    path: &Path,
    device: &I::Device,
) -> Result<(), AnyError> {
    // Fail on an unwritable destination before hours of training, not after.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    if path.exists() {
        eprintln!(
            "note: {} exists (an earlier table); this run replaces it when it finishes",
            path.display()
        );
    }
    let corpus = load_corpus(args)?;
    let load_before = report::load_average();
    let start = Instant::now();
    let mut runs = Vec::new();
    for projections in
        table::configurations(&args.table_rows, args.transitions, args.bit_training.into())
    {
        let config = model_config(args, &corpus, projections);
        let (summary, _) = train_one::<I>(args, &corpus, &config, device)?;
        println!("{}", summary.text());
        println!("{}", summary.json());
        runs.push(summary);
    }
    let context = table::TableContext {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: report::machine(),
        backend: args.backend.name().to_string(),
        settings: format!(
            "{} layers, d_model {}, {} heads, context {}, batch {}, {} steps, Adam lr {} \
             (warmup + cosine), seed {}, text {} ({} train / {} validation chars), \
             validation on {} windows",
            args.layers,
            args.d_model,
            args.heads,
            args.context,
            args.batch_size,
            args.steps(),
            args.lr,
            args.seed,
            args.text.display(),
            corpus.train.len(),
            corpus.valid.len(),
            data::eval_windows(corpus.valid.len(), args.context, args.eval_windows).len(),
        ),
        wall_s: start.elapsed().as_secs_f64(),
        load: format!("{load_before} before, {} after", report::load_average()),
    };
    let markdown = table::markdown(&runs, &context);
    saved_pair::write_atomically(path, &markdown)?;
    println!("{markdown}");
    eprintln!("table written to {}", path.display());
    Ok(())
}
