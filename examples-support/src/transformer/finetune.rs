//! Starting from a trained dense checkpoint: compress its projections (RBE seeds, a
//! truncated SVD, or Burn's post-training quantization), measure the model right after,
//! then fine-tune it, on the cross-entropy or distilled from the dense model.
//!
//! [`run`] is the whole pipeline; the transformer example's `--init-from` calls it, and so
//! can a driver that sweeps methods for a quality-vs-bytes curve. It reads the checkpoint
//! and writes nothing.

use std::fmt;
use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::nn::Linear;
use burn::prelude::*;
use rbe_burn::{Compressor, RbeBackend, RbeError, SeedFormat};

use super::checkpoint::{self, CheckpointError};
use super::data::{self, Corpus};
use super::method::{CompressMethod, EncodeErrors, LayerError, QUANT_BLOCK};
use super::model::{Gpt, GptConfig, ProjectionKind};
use super::report::{InitFrom, RunSummary};
use super::training::{self, Distillation, Progress, Teacher, TrainError, TrainingConfig};
use crate::layer::Layer;
use crate::low_rank::{LowRankError, LowRankLinear};
use crate::quantized_linear::{QuantizedLinear, WeightQuant};

/// One way a checkpoint's architecture differs from the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `n_layers`, `d_model`, `n_heads`, `context`, `mlp_ratio`, `vocab_size` or `vocab`.
    pub field: &'static str,
    /// What the checkpoint holds.
    pub saved: String,
    /// What the flags ask for.
    pub wanted: String,
}

/// Why a run from a dense checkpoint could not be done. Nothing is written in any case.
#[derive(Debug)]
pub enum FinetuneError {
    /// The checkpoint is missing, damaged or truncated ([`checkpoint::load`]).
    Checkpoint(CheckpointError),
    /// The checkpoint's projections or head are not dense `Linear`s.
    NotDense {
        /// The checkpoint's stem.
        path: PathBuf,
        /// How its block projections are stored.
        projections: ProjectionKind,
        /// How its head is stored.
        head: ProjectionKind,
    },
    /// The checkpoint is a model of another architecture or vocabulary.
    Architecture {
        /// The checkpoint's stem.
        path: PathBuf,
        /// Every field that differs.
        differences: Vec<Difference>,
    },
    /// The method cannot be used as asked: a dense "compression", or fine-tuning steps for
    /// an evaluation-only method.
    Method(String),
    /// RBE encoding failed; the error names the layer.
    Encode(RbeError),
    /// A layer could not be factored.
    LowRank {
        /// The layer.
        layer: String,
        /// Why.
        source: LowRankError,
    },
    /// A layer's weight does not split into whole quantization blocks on either side.
    Quantize {
        /// The layer.
        layer: String,
        /// `[d_input, d_output]`.
        dims: [usize; 2],
        /// What one side would have to be a multiple of.
        multiple: usize,
    },
    /// Fine-tuning failed or its settings are invalid.
    Train(TrainError),
}

impl fmt::Display for FinetuneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Checkpoint(err) => err.fmt(f),
            Self::NotDense {
                path,
                projections,
                head,
            } => write!(
                f,
                "{} is not a dense checkpoint (projections {projections:?}, head {head:?}); \
                 --init-from needs one written with --dense",
                path.display()
            ),
            Self::Architecture { path, differences } => write!(
                f,
                "{} is a model of another architecture than the flags ask for: {}",
                path.display(),
                differences
                    .iter()
                    .map(|d| format!("{} saved {} vs wanted {}", d.field, d.saved, d.wanted))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Self::Method(msg) => f.write_str(msg),
            Self::Encode(err) => write!(f, "encoding the dense model: {err}"),
            Self::LowRank { layer, source } => write!(f, "layer {layer}: {source}"),
            Self::Quantize {
                layer,
                dims,
                multiple,
            } => write!(
                f,
                "cannot quantize layer {layer}'s {}x{} weight: neither side is a multiple of \
                 {multiple} (the block size and the values per packed u32)",
                dims[0], dims[1]
            ),
            Self::Train(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for FinetuneError {}

impl From<TrainError> for FinetuneError {
    fn from(err: TrainError) -> Self {
        Self::Train(err)
    }
}

/// Everything a run from a dense checkpoint needs besides the corpus.
#[derive(Debug, Clone)]
pub struct FinetuneConfig {
    /// The dense checkpoint's stem (`PATH.rbe` + `PATH.json`).
    pub checkpoint: PathBuf,
    /// The architecture the checkpoint must have: dense projections and head, the
    /// corpus's vocabulary size.
    pub architecture: GptConfig,
    /// How the projections are compressed.
    pub method: CompressMethod,
    /// Compress the LM head too.
    pub compress_head: bool,
    /// Fine-tuning; `steps` 0 means compress and evaluate only.
    pub training: TrainingConfig,
    /// Distil from the dense model during fine-tuning.
    pub distill: Option<Distillation>,
    /// Validation windows per evaluation (`usize::MAX`: all).
    pub eval_windows: usize,
    /// The backend's name, for the report.
    pub backend: &'static str,
}

/// The result of [`run`].
#[derive(Debug)]
pub struct Finetuned<B: Backend> {
    /// What was measured; [`RunSummary::json`] is the example's JSON line.
    pub summary: RunSummary,
    /// The compressed (and fine-tuned) model, for inference.
    pub model: Gpt<B>,
}

/// Loads the dense checkpoint, checks it is this architecture, compresses it with
/// `config.method`, evaluates it, fine-tunes it for `config.training.steps` steps (with
/// `progress` called as [`training::train`] does) and evaluates it again.
///
/// # Errors
/// [`FinetuneError`]; every check of the settings and the checkpoint comes before any
/// training.
pub fn run<I: RbeBackend>(
    config: &FinetuneConfig,
    corpus: &Corpus,
    device: &I::Device,
    progress: impl FnMut(&Progress),
) -> Result<Finetuned<I>, FinetuneError> {
    let steps = config.training.steps;
    if let CompressMethod::Rbe(ProjectionKind::Dense) = config.method {
        return Err(FinetuneError::Method(
            "dense is not a compression method: use rbe with --format paper or sign".into(),
        ));
    }
    if steps > 0 {
        if !config.method.trainable() {
            return Err(FinetuneError::Method(format!(
                "{} is post-training quantization and cannot be fine-tuned: run it with \
                 --steps 0 (asked for {steps} steps)",
                config.method.name()
            )));
        }
        config.training.validate()?;
    }
    if let CompressMethod::BurnQuant(grid) = config.method
        && !sub_byte_quantization::<I>()
    {
        return Err(FinetuneError::Method(format!(
            "{} needs a backend that quantizes to {} bits (flex, wgpu, cuda): Burn 0.21's \
             NdArray quantizes to 8 bits only",
            config.method.name(),
            grid.bits()
        )));
    }
    let (dense, _, _) = load_dense::<Autodiff<I>>(config, corpus, device)?;
    let teacher = dense.valid();
    let dense_val_loss = training::evaluate_inner(&teacher, &corpus.valid, config.eval_windows);

    let head = config.compress_head;
    let (student, encode_errors) = match &config.method {
        CompressMethod::Rbe(kind) => {
            let mut template = kind
                .rbe_config(config.architecture.d_model, config.architecture.d_model)
                .ok_or_else(|| FinetuneError::Method("dense is not a compression".into()))?;
            if let SeedFormat::Paper(paper) = template.format {
                template.format = paper.for_trained_weights().into();
            }
            let mut compressor = Compressor::new(&template);
            let student = dense
                .compress_layers(&mut compressor, head)
                .map_err(FinetuneError::Encode)?;
            let layers = compressor
                .into_report()
                .layers
                .into_iter()
                .map(|l| LayerError {
                    name: l.name,
                    rel_error: l.report.rel_frobenius_error,
                    weight_norm: l.weight_norm,
                })
                .collect();
            (Student::Train(student), EncodeErrors { layers })
        }
        CompressMethod::LowRank { rank } => {
            let mut errors = EncodeErrors::default();
            let student =
                dense.try_map_layers(head, |name, layer| {
                    let linear = dense_linear(name, layer)?;
                    let (low_rank, rel_error) = LowRankLinear::from_linear(&linear, *rank)
                        .map_err(|source| FinetuneError::LowRank {
                            layer: name.to_string(),
                            source,
                        })?;
                    errors.layers.push(LayerError {
                        name: name.to_string(),
                        rel_error,
                        weight_norm: frobenius(linear.weight.val()),
                    });
                    Ok::<_, FinetuneError>(Layer::LowRank(low_rank))
                })?;
            (Student::Train(student), errors)
        }
        CompressMethod::BurnQuant(grid) => {
            let quant = WeightQuant::new(*grid, QUANT_BLOCK)
                .map_err(|err| FinetuneError::Method(format!("{}: {err}", config.method.name())))?;
            let mut errors = EncodeErrors::default();
            let student = teacher.clone().try_map_layers(head, |name, layer| {
                let linear = dense_linear(name, layer)?;
                let [d_input, d_output] = linear.weight.dims();
                let axis =
                    quant
                        .block_axis(d_input, d_output)
                        .ok_or_else(|| FinetuneError::Quantize {
                            layer: name.to_string(),
                            dims: [d_input, d_output],
                            multiple: quant.axis_multiple(),
                        })?;
                let original = linear.weight.val();
                let quantized = QuantizedLinear::quantize(linear, &quant, axis);
                let weight_norm = frobenius(original.clone());
                let rel_error = frobenius(original - quantized.dequantized_weight())
                    / weight_norm.max(f64::MIN_POSITIVE);
                errors.layers.push(LayerError {
                    name: name.to_string(),
                    rel_error,
                    weight_norm,
                });
                Ok::<_, FinetuneError>(Layer::Quantized(quantized))
            })?;
            (Student::Frozen(student), errors)
        }
    };

    let val_loss_after_encode = match &student {
        Student::Train(model) => training::evaluate(model, &corpus.valid, config.eval_windows),
        Student::Frozen(model) => {
            training::evaluate_inner(model, &corpus.valid, config.eval_windows)
        }
    };
    let bytes = match &student {
        Student::Train(model) => model.bytes(),
        Student::Frozen(model) => model.bytes(),
    };
    let mut summary = RunSummary {
        projections: match &config.method {
            CompressMethod::Rbe(kind) => kind.clone(),
            _ => ProjectionKind::Dense,
        },
        compressed_head: head,
        steps,
        train_loss: f64::NAN,
        val_loss: val_loss_after_encode,
        val_chars: data::eval_windows(
            corpus.valid.len(),
            config.architecture.context,
            config.eval_windows,
        )
        .len()
            * config.architecture.context,
        unigram_bpc: corpus.unigram_bpc(),
        bigram_bpc: corpus.bigram_bpc(),
        uniform_bpc: corpus.uniform_bpc(),
        bytes,
        tokens_per_s: 0.0,
        train_s: 0.0,
        backend: config.backend,
        init: Some(InitFrom {
            checkpoint: config.checkpoint.clone(),
            method: config.method.clone(),
            val_loss_after_encode,
            dense_val_loss,
            encode_errors: Some(encode_errors),
            distill: config.distill,
        }),
    };

    let model = match student {
        Student::Frozen(model) => model,
        // No step taken: the model is the one just measured.
        Student::Train(model) if steps == 0 => model.valid(),
        Student::Train(model) => {
            let teacher = config.distill.map(|distillation| Teacher {
                model: teacher,
                distillation,
            });
            let trained = training::train(
                model,
                corpus,
                &config.training,
                teacher.as_ref(),
                device,
                progress,
            )?;
            summary.val_loss =
                training::evaluate(&trained.model, &corpus.valid, config.eval_windows);
            summary.train_loss = trained.train_loss;
            summary.tokens_per_s = trained.tokens_per_s;
            summary.train_s = trained.train_s;
            trained.model.valid()
        }
    };
    Ok(Finetuned { summary, model })
}

/// Whether Burn's quantizer on `B` takes the 4- and 2-bit grids. Burn 0.21's NdArray
/// implements only 8-bit values and panics on the others; there is no capability query, so
/// the backend is recognised by name.
fn sub_byte_quantization<B: Backend>() -> bool {
    !std::any::type_name::<B>().contains("NdArray")
}

/// The compressed model: trainable on the autodiff backend, or (quantized) on the inference
/// backend only.
enum Student<I: RbeBackend> {
    Train(Gpt<Autodiff<I>>),
    Frozen(Gpt<I>),
}

/// Loads `config.checkpoint` and checks that it is a dense model of `config.architecture`
/// with the corpus's vocabulary.
fn load_dense<B: Backend>(
    config: &FinetuneConfig,
    corpus: &Corpus,
    device: &B::Device,
) -> Result<(Gpt<B>, data::Vocab, checkpoint::CheckpointMeta), FinetuneError> {
    let path = &config.checkpoint;
    let (model, vocab, meta) =
        checkpoint::load::<B>(path, device).map_err(FinetuneError::Checkpoint)?;
    let saved = &meta.model;
    if saved.projections != ProjectionKind::Dense || saved.head != ProjectionKind::Dense {
        return Err(FinetuneError::NotDense {
            path: path.clone(),
            projections: saved.projections.clone(),
            head: saved.head.clone(),
        });
    }
    let differences = differences(saved, &config.architecture, &meta.vocab, corpus);
    if !differences.is_empty() {
        return Err(FinetuneError::Architecture {
            path: path.clone(),
            differences,
        });
    }
    Ok((model, vocab, meta))
}

/// Every field in which the saved architecture differs from the wanted one.
fn differences(
    saved: &GptConfig,
    wanted: &GptConfig,
    saved_vocab: &str,
    corpus: &Corpus,
) -> Vec<Difference> {
    let sizes = [
        ("n_layers", saved.n_layers, wanted.n_layers),
        ("d_model", saved.d_model, wanted.d_model),
        ("n_heads", saved.n_heads, wanted.n_heads),
        ("context", saved.context, wanted.context),
        ("mlp_ratio", saved.mlp_ratio, wanted.mlp_ratio),
        ("vocab_size", saved.vocab_size, wanted.vocab_size),
    ];
    let mut out: Vec<Difference> = sizes
        .into_iter()
        .filter(|(_, s, w)| s != w)
        .map(|(field, s, w)| Difference {
            field,
            saved: s.to_string(),
            wanted: w.to_string(),
        })
        .collect();
    let corpus_vocab = corpus.vocab.as_string();
    if saved.vocab_size == wanted.vocab_size && saved_vocab != corpus_vocab {
        // Same size but other characters: ids would silently mean other characters.
        out.push(Difference {
            field: "vocab",
            saved: format!("{saved_vocab:?}"),
            wanted: format!("{corpus_vocab:?}"),
        });
    }
    out
}

/// The dense `Linear` inside `layer`; the checkpoint was checked to be dense, so anything
/// else is reported rather than assumed away.
fn dense_linear<B: Backend>(name: &str, layer: Layer<B>) -> Result<Linear<B>, FinetuneError> {
    match layer {
        Layer::Dense(linear) => Ok(linear),
        other => Err(FinetuneError::Method(format!(
            "layer {name} is {}, not a dense Linear",
            other.kind_name()
        ))),
    }
}

/// `||W||_F` in f64.
///
/// # Shapes
/// - weight: `[rows, cols]`
fn frobenius<B: Backend>(weight: Tensor<B, 2>) -> f64 {
    weight
        .powi_scalar(2)
        .sum()
        .into_scalar()
        .elem::<f64>()
        .sqrt()
}
