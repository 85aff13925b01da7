//! The one-line JSON summary of a run.

use serde::{Deserialize, Serialize};

use rbe_burn::BitTraining;

use super::model::{ModelConfig, ModelKind, RbeFormat};
use super::peak_rss::peak_rss_mib;
// The public path callers know; training takes it from `peak_rss` itself, so that training
// does not depend on the report that depends on it.
pub use super::peak_rss::reset_peak_rss;
use super::training::{Accuracy, TrainingConfig};
use crate::layer::ParamBytes;

/// What a run prints at the end, as one JSON line. Fields that do not apply to the model
/// (e.g. `block_size` of a dense model) are `null`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// `dense`, `rbe` or `lowrank`.
    pub model: String,
    /// Side of the RBE blocks.
    pub block_size: Option<usize>,
    /// Rank of each RBE layer's dense residual.
    pub residual_rank: Option<usize>,
    /// Requested rank of the low-rank layers.
    pub rank: Option<usize>,
    /// Whether the head is a dense `Linear`.
    pub dense_head: bool,
    /// Whether the RBE state transitions were on.
    pub transitions: Option<bool>,
    /// The RBE seed format (`"paper"` or `"sign"`); `null` for other models.
    #[serde(default)]
    pub format: Option<String>,
    /// How sign-blueprint bits learned (`"ste"` or `"flip"`); `null` otherwise.
    #[serde(default)]
    pub bit_training: Option<String>,
    /// Whether the hidden layer was frozen at its initialisation (the control).
    pub freeze_hidden: bool,
    /// Epochs trained.
    pub epochs: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Images per step.
    pub batch_size: usize,
    /// Initialisation and shuffling seed.
    pub seed: u64,
    /// `--train-limit`, if given.
    pub train_limit: Option<usize>,
    /// Training images actually used.
    pub train_images: usize,
    /// Held-out training images validated on, if any.
    pub holdout: Option<usize>,
    /// Accuracy on the held-out training images, in `[0, 1]`.
    pub valid_accuracy: Option<f64>,
    /// Accuracy on the test images, in `[0, 1]`; `null` in hold-out runs, which choose
    /// hyper-parameters and so never look at the test set.
    pub test_accuracy: Option<f64>,
    /// Test images evaluated.
    pub test_images: usize,
    /// Bytes that stand for the weight matrices (seeds and residuals, `W`, or `U` and `V`).
    pub weight_bytes: usize,
    /// `weight_bytes` plus biases.
    pub total_param_bytes: usize,
    /// Total bytes of the dense model over `total_param_bytes`.
    pub compression_vs_dense: f64,
    /// Training wall time per epoch (with the `Learner`'s per-epoch validation); `null` when
    /// only evaluating.
    pub seconds_per_epoch: Option<f64>,
    /// Peak resident memory of the run (Linux `VmHWM`, reset when training starts), MiB;
    /// `null` elsewhere. It covers training and the evaluation after it.
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
    /// `flex`, `wgpu`, `ndarray` or `cuda`.
    pub backend: String,
    /// Devices trained on (`--devices`; 1 in reports written before it existed).
    #[serde(default = "one")]
    pub devices: usize,
    /// Whether each device kept its own replica (`--ddp`).
    #[serde(default)]
    pub ddp: bool,
    /// Whether this run only reloaded and evaluated a saved model.
    pub eval_only: bool,
    /// Where the model is saved.
    pub model_path: String,
    /// The dense model this run compressed and trained on from (`--init-from`); `null` for
    /// a run from scratch, like every field below.
    #[serde(default)]
    pub init_from: Option<String>,
    /// How the dense layers were compressed: `paper-b8`, `sign-b16-r4`, `lowrank-k16`.
    #[serde(default)]
    pub method: Option<String>,
    /// Test accuracy of the dense model started from, on the same test images.
    #[serde(default)]
    pub dense_test_accuracy: Option<f64>,
    /// Test accuracy right after encoding, before any training step; equal to
    /// `test_accuracy` when no epoch was trained.
    #[serde(default)]
    pub test_accuracy_after_encode: Option<f64>,
    /// Dense bytes of the compressed layers over the bytes they store (biases included);
    /// `compression_vs_dense` is the whole model's, a dense head included.
    #[serde(default)]
    pub projection_compression: Option<f64>,
    /// Relative Frobenius error `||W - W'|| / ||W||` of the encode, per compressed layer
    /// and over all of them.
    #[serde(default)]
    pub encode_rel_error: Option<EncodeRelError>,
}

/// Relative Frobenius errors of an encode: `overall` takes the weights of all compressed
/// layers as one vector; each other key is a layer's name (`hidden`, `head`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeRelError {
    /// `sqrt(sum ||W_l - W_l'||²) / sqrt(sum ||W_l||²)`.
    pub overall: f64,
    /// Each compressed layer's `||W_l - W_l'|| / ||W_l||`.
    #[serde(flatten)]
    pub layers: std::collections::BTreeMap<String, f64>,
}

/// What a run that starts from a trained dense model adds to its report.
#[derive(Debug, Clone)]
pub struct InitFromSummary {
    /// The dense model's file.
    pub init_from: std::path::PathBuf,
    /// See [`RunReport::method`].
    pub method: String,
    /// The dense model's test accuracy.
    pub dense_test: Accuracy,
    /// The test accuracy right after encoding.
    pub test_after_encode: Accuracy,
    /// See [`RunReport::projection_compression`].
    pub projection_compression: f64,
    /// See [`RunReport::encode_rel_error`].
    pub encode_rel_error: EncodeRelError,
}

/// What a report is made from.
pub struct ReportInputs<'a> {
    /// The run's configuration.
    pub config: &'a TrainingConfig,
    /// The model's stored bytes.
    pub bytes: ParamBytes,
    /// Accuracy on the held-out training images.
    pub valid: Option<Accuracy>,
    /// Accuracy on the test images.
    pub test: Option<Accuracy>,
    /// `None` when only evaluating.
    pub seconds_per_epoch: Option<f64>,
    /// The backend's name.
    pub backend: &'a str,
    /// The saved model.
    pub model_path: &'a std::path::Path,
}

impl RunReport {
    /// Fills the report; fields that do not apply to the model's kind are `None`.
    pub fn new(inputs: ReportInputs<'_>) -> Self {
        let ReportInputs {
            config,
            bytes,
            valid,
            test,
            seconds_per_epoch,
            backend,
            model_path,
        } = inputs;
        let model: &ModelConfig = &config.model;
        let is = |kind| model.kind == kind;
        Self {
            model: model.kind.name().to_string(),
            block_size: is(ModelKind::Rbe).then_some(model.block_size),
            residual_rank: is(ModelKind::Rbe).then_some(model.residual_rank),
            rank: is(ModelKind::Lowrank).then_some(model.rank),
            dense_head: model.dense_head && !is(ModelKind::Dense),
            transitions: is(ModelKind::Rbe).then_some(model.transitions),
            format: is(ModelKind::Rbe).then(|| model.format.name().to_string()),
            bit_training: (is(ModelKind::Rbe) && model.format != RbeFormat::Paper).then(|| {
                match model.bit_training {
                    BitTraining::StraightThrough => "ste".to_string(),
                    BitTraining::Flip => "flip".to_string(),
                    BitTraining::Frozen => "frozen".to_string(),
                }
            }),
            peak_rss_mib: peak_rss_mib(),
            freeze_hidden: model.freeze_hidden,
            epochs: config.epochs,
            lr: config.lr,
            batch_size: config.batch_size,
            seed: config.seed,
            train_limit: config.train_limit,
            train_images: config.train_range().len(),
            holdout: config.holdout,
            valid_accuracy: valid.map(|a| a.fraction()),
            test_accuracy: test.map(|a| a.fraction()),
            test_images: test.map_or(0, |a| a.total),
            weight_bytes: bytes.weight,
            total_param_bytes: bytes.total(),
            compression_vs_dense: model.dense_bytes() as f64 / bytes.total() as f64,
            seconds_per_epoch,
            backend: backend.to_string(),
            devices: 1,
            ddp: false,
            eval_only: seconds_per_epoch.is_none(),
            model_path: model_path.display().to_string(),
            init_from: None,
            method: None,
            dense_test_accuracy: None,
            test_accuracy_after_encode: None,
            projection_compression: None,
            encode_rel_error: None,
        }
    }

    /// Adds what a run that started from a trained dense model reports. Such a run trained
    /// (or, with 0 epochs, only encoded) a model: it never counts as evaluation only, and
    /// with 0 epochs it used no training image.
    pub fn with_init_from(self, summary: InitFromSummary) -> Self {
        Self {
            eval_only: false,
            train_images: if self.epochs == 0 {
                0
            } else {
                self.train_images
            },
            init_from: Some(summary.init_from.display().to_string()),
            method: Some(summary.method),
            dense_test_accuracy: Some(summary.dense_test.fraction()),
            test_accuracy_after_encode: Some(summary.test_after_encode.fraction()),
            projection_compression: Some(summary.projection_compression),
            encode_rel_error: Some(summary.encode_rel_error),
            ..self
        }
    }

    /// Adds where training ran: `devices` devices, with a replica each under `ddp`.
    pub fn with_devices(self, devices: usize, ddp: bool) -> Self {
        Self {
            devices,
            ddp,
            ..self
        }
    }

    /// The report as one JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report is plain data")
    }
}

fn one() -> usize {
    1
}
