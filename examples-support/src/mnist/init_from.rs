//! Starting from a trained dense model (`--init-from`): reload it, encode its layers into RBE
//! seeds (or factor them into low-rank layers), evaluate right after the encode, train on
//! from there with the example's usual `Learner` path, evaluate again and report.
//!
//! How accuracy goes from the dense model through the encode to a few epochs of training is
//! what a compression curve plots; [`InitFromJob`] is the one call per point, shared by the
//! example and the integration tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, ModuleMapper, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rbe_burn::RbeBackend;

use super::data::{DataDir, IMAGE_PIXELS, Mnist};
use super::model::{Mlp, ModelConfig, ModelError, ModelKind, NUM_CLASSES, dense_linear};
use super::report::{EncodeRelError, InitFromSummary, ReportInputs, RunReport, reset_peak_rss};
use super::run::{EVAL_BATCH, note_earlier_model, note_kept_model};
use super::training::{self, InitFromMismatch, Parallelism, TrainError, TrainingConfig};
use crate::backend::{BackendJob, BackendKind};
use crate::layer::Layer;
use crate::low_rank::LowRankLinear;

/// Loads the dense model saved at `init_from`, encodes it into the model `config.model`
/// describes (`rbe` or `lowrank`; `dense_head` keeps the head dense), evaluates it on the
/// test images, trains it `config.epochs` epochs (0: encode only), evaluates again, saves it
/// as `<artifact_dir>/model.{rbe,json}` (reloadable with `--eval-only`) and reports.
///
/// A source model that is not a dense model of the hidden width `config.model` has
/// ([`TrainError::InitFrom`]), or that cannot be read ([`TrainError::Load`],
/// [`TrainError::Checkpoint`]), is refused before anything is written.
pub struct InitFromJob {
    /// The compressed model's kind and settings, and the training run after the encode.
    pub config: TrainingConfig,
    /// The dense model (`model.rbe`, with `model.json` beside it).
    pub init_from: PathBuf,
    /// Where the `Learner` logs and the compressed model go.
    pub artifact_dir: PathBuf,
    /// Where the MNIST files come from.
    pub data_dir: DataDir,
    /// The flag that chooses `artifact_dir`, for the note when it holds an earlier run.
    pub artifact_flag: &'static str,
    /// How many devices to train on after the encode.
    pub parallelism: Parallelism,
}

impl BackendJob for InitFromJob {
    type Output = Result<RunReport, TrainError>;

    fn run<B: RbeBackend>(self, device: B::Device, kind: BackendKind) -> Self::Output {
        let Self {
            config,
            init_from,
            artifact_dir,
            data_dir,
            artifact_flag,
            parallelism,
        } = self;
        check_config(&config)?;
        let placement = parallelism.place::<B>(kind, &device)?;
        reset_peak_rss();
        let (dense, _) = training::load::<B>(&init_from, &device)?;
        check_dense(&dense, &config.model).map_err(|source| TrainError::InitFrom {
            path: init_from.clone(),
            source,
        })?;
        let data = Mnist::load(&data_dir)?;
        let range = config.test_range();
        let test = |model: &Mlp<B>| {
            training::evaluate(
                model,
                data.test(range.start, range.end),
                EVAL_BATCH,
                &device,
            )
        };
        let dense_test = test(&dense);
        // The paper format's encode draws its CORDIC bits from the initializer.
        B::seed(&device, config.seed);
        let encoded = encode(dense, &config.model)?;
        let after_encode = test(&encoded.model);
        eprintln!(
            "{}: dense test accuracy {:.4}, encode error {:.4}, after the encode {:.4}",
            encoded.method,
            dense_test.fraction(),
            encoded.rel_error.overall,
            after_encode.fraction()
        );

        let model_stem = artifact_dir.join("model");
        let earlier = note_earlier_model::<B>(&artifact_dir, artifact_flag);
        let (model, seconds_per_epoch) = if config.epochs == 0 {
            (encoded.model, None)
        } else {
            let start = <Mlp<Autodiff<B>> as AutodiffModule<_>>::from_inner(encoded.model)
                .map(&mut Trainable);
            let trained = training::train_model::<Autodiff<B>>(
                &config,
                start,
                &data,
                &artifact_dir,
                &placement,
            )
            .inspect_err(|err| note_kept_model(err, &earlier))?;
            (trained.model, Some(trained.seconds_per_epoch))
        };
        let final_test = test(&model);
        let model_path = training::save(&model, &config, &model_stem)?;
        let report = RunReport::new(ReportInputs {
            config: &config,
            bytes: model.bytes(),
            valid: None,
            test: Some(final_test),
            seconds_per_epoch,
            backend: kind.name(),
            model_path: &model_path,
        })
        .with_devices(placement.devices.len(), placement.ddp);
        Ok(report.with_init_from(InitFromSummary {
            init_from,
            method: encoded.method,
            dense_test,
            test_after_encode: after_encode,
            projection_compression: encoded.projection_compression,
            encode_rel_error: encoded.rel_error,
        }))
    }
}

/// Marks every float parameter as trainable. The encoded model was evaluated on the inner
/// backend first, and Burn 0.21's `Param::clone` of an initialised parameter there drops the
/// gradient mark (it re-reads it from a tensor that cannot carry one), so without this some
/// parameters would come out of `from_inner` frozen and the fine-tune would leave them as
/// encoded.
struct Trainable;

impl<B: AutodiffBackend> ModuleMapper<B> for Trainable {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.require_grad(), mapper)
    }
}

/// The settings an init-from run cannot take, refused before anything is read or written.
fn check_config(config: &TrainingConfig) -> Result<(), TrainError> {
    let bad = |msg: &str| Err(TrainError::Config(msg.into()));
    match config.model.kind {
        ModelKind::Dense => {
            return bad("--init-from encodes the dense model: pass --model rbe or --model lowrank");
        }
        ModelKind::Lowrank if config.model.rank == 0 => return bad("--rank must be >= 1"),
        ModelKind::Rbe | ModelKind::Lowrank => {}
    }
    if config.model.freeze_hidden {
        return bad(
            "--freeze-hidden is the random-features control; it has no meaning with \
                    --init-from, whose hidden layer is the trained one",
        );
    }
    // The dense model was trained on images a hold-out split would call unseen.
    if config.holdout.is_some() {
        return bad(
            "--holdout cannot be combined with --init-from: the dense model may \
                    have been trained on the held-out images",
        );
    }
    config.validate_except_epochs()
}

/// Whether `model` is the dense classifier that `target` compresses: both layers dense, with
/// `target`'s widths.
pub fn check_dense<B: Backend>(
    model: &Mlp<B>,
    target: &ModelConfig,
) -> Result<(), InitFromMismatch> {
    let layers = [
        ("hidden", &model.hidden, [IMAGE_PIXELS, target.d_hidden]),
        ("head", &model.head, [target.d_hidden, NUM_CLASSES]),
    ];
    for (layer, saved, expected) in layers {
        let linear = dense_linear(layer, saved).map_err(|_| InitFromMismatch::NotDense {
            layer,
            kind: saved.kind_name(),
        })?;
        let found = linear.weight.dims();
        if found != expected {
            return Err(InitFromMismatch::Shape {
                layer,
                expected,
                found,
            });
        }
    }
    Ok(())
}

/// A dense model after [`encode`].
pub struct Encoded<B: Backend> {
    /// The model with its compressed layers.
    pub model: Mlp<B>,
    /// See [`RunReport::method`].
    pub method: String,
    /// See [`RunReport::projection_compression`].
    pub projection_compression: f64,
    /// See [`RunReport::encode_rel_error`].
    pub rel_error: EncodeRelError,
}

/// Encodes a dense model into the kind `target` describes: RBE through one
/// [`Mlp::compress`] with [`ModelConfig::compressor`], or low-rank layers from the truncated
/// SVD of each weight. `target.dense_head` keeps the head dense.
pub fn encode<B: Backend>(dense: Mlp<B>, target: &ModelConfig) -> Result<Encoded<B>, TrainError> {
    match target.kind {
        ModelKind::Rbe => {
            let mut compressor = target.compressor();
            let model = dense.compress(&mut compressor, target.dense_head)?;
            let report = compressor.into_report();
            // An encode error above 1 usually means the format's constraint clamped most
            // seeds; say so where the error is printed, not only in the numbers.
            for layer in &report.layers {
                let (low, high) = (
                    layer.report.seeds_at_radius_min,
                    layer.report.seeds_at_radius_max,
                );
                if low + high > 0 {
                    eprintln!(
                        "note: {} layer: {low} seeds were raised to the format's smallest \
                         amplitude and {high} capped at its largest (encode error {:.4})",
                        layer.name, layer.report.rel_frobenius_error
                    );
                }
            }
            Ok(Encoded {
                model,
                method: method_name(target),
                projection_compression: report.compression(),
                rel_error: EncodeRelError {
                    overall: report.rel_frobenius_error(),
                    layers: report
                        .layers
                        .iter()
                        .map(|l| (l.name.clone(), l.report.rel_frobenius_error))
                        .collect(),
                },
            })
        }
        ModelKind::Lowrank => factorize(dense, target),
        ModelKind::Dense => Err(TrainError::Config(
            "a dense model is not encoded: pass --model rbe or --model lowrank".into(),
        )),
    }
}

/// How `target` compresses, as the report names it: `paper-b8`, `sign-b16-r4`, `lowrank-k16`.
pub fn method_name(target: &ModelConfig) -> String {
    match target.kind {
        ModelKind::Rbe => {
            let residual = match target.residual_rank {
                0 => String::new(),
                rank => format!("-r{rank}"),
            };
            format!("{}-b{}{residual}", target.format.name(), target.block_size)
        }
        ModelKind::Lowrank => format!("lowrank-k{}", target.rank),
        ModelKind::Dense => ModelKind::Dense.name().to_string(),
    }
}

/// One layer's low-rank fit.
struct Fit {
    /// `||W - U V|| / ||W||`, with the f32 factors the layer stores.
    rel_error: f64,
    /// `||W||`, which weighs the layer in the overall error.
    weight_norm: f64,
}

/// Both layers (or the hidden one, with `target.dense_head`) as rank-`k` layers from the
/// truncated SVD of their weights, `k` capped per layer as [`ModelConfig::low_rank`] caps it
/// for a fresh model, so the result reloads through [`ModelConfig::try_init`].
fn factorize<B: Backend>(dense: Mlp<B>, target: &ModelConfig) -> Result<Encoded<B>, TrainError> {
    let mut fits = BTreeMap::new();
    let mut factor = |name: &'static str, layer: &Layer<B>| -> Result<Layer<B>, TrainError> {
        let linear = dense_linear(name, layer)?;
        let [d_input, d_output] = linear.weight.dims();
        let (low_rank, fit) = low_rank_from_linear(linear, target.low_rank(d_input, d_output))
            .map_err(|msg| ModelError::Config(format!("{name} layer: {msg}")))?;
        fits.insert(name, fit);
        Ok(Layer::LowRank(low_rank))
    };
    let hidden = factor("hidden", &dense.hidden)?;
    let head = if target.dense_head {
        dense.head
    } else {
        factor("head", &dense.head)?
    };
    let model = Mlp {
        hidden,
        head,
        activation: dense.activation,
    };

    let compressed = [("hidden", &model.hidden), ("head", &model.head)]
        .into_iter()
        .filter(|(name, _)| fits.contains_key(name));
    let (dense_bytes, stored_bytes) = compressed.fold((0, 0), |(d, s), (_, layer)| {
        (d + layer.dense_bytes(), s + layer.bytes().total())
    });
    let (err, norm) = fits.values().fold((0.0, 0.0), |(e, n), fit| {
        let abs = fit.rel_error * fit.weight_norm;
        (e + abs * abs, n + fit.weight_norm * fit.weight_norm)
    });
    Ok(Encoded {
        model,
        method: method_name(target),
        projection_compression: dense_bytes as f64 / stored_bytes.max(1) as f64,
        rel_error: EncodeRelError {
            overall: if norm > 0.0 { (err / norm).sqrt() } else { 0.0 },
            layers: fits
                .iter()
                .map(|(name, fit)| (name.to_string(), fit.rel_error))
                .collect(),
        },
    })
}

/// The rank-`rank` layer closest to `linear` ([`LowRankLinear::from_linear`]) and its fit.
fn low_rank_from_linear<B: Backend>(
    linear: &Linear<B>,
    rank: usize,
) -> Result<(LowRankLinear<B>, Fit), String> {
    let (layer, rel_error) = LowRankLinear::from_linear(linear, rank).map_err(|e| e.to_string())?;
    let weight_norm = linear
        .weight
        .val()
        .powi_scalar(2)
        .sum()
        .into_scalar()
        .elem::<f64>()
        .sqrt();
    Ok((
        layer,
        Fit {
            rel_error,
            weight_norm,
        },
    ))
}
