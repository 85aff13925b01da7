//! Training with burn-train's `Learner`, evaluation, and saving and reloading the model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::record::{FileRecorder, Recorder, RecorderError};
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining};
use rbe::{RbeBackend, RbeError, RbeOptimizer};

use super::data::{DataError, Mnist, MnistBatcher, MnistSlice, TEST_LEN, TRAIN_LEN};
use super::model::{Mlp, MlpRecord, ModelConfig, ModelError, record_kind_name};
use super::progress::LineRenderer;

/// How models are saved: Burn's full-precision named-MessagePack record behind a length and
/// CRC-32 header, so RBE seeds (f32 `r`, `theta`, i32 bit halves) round-trip bit for bit and
/// a damaged file is an error rather than a silently different model. Any full-precision
/// `FileRecorder` (e.g. `burn::record::DefaultRecorder`) can replace it here.
pub type ModelRecorder = rbe::RbeRecorder;

/// One training run.
#[derive(Config, Debug)]
pub struct TrainingConfig {
    /// The classifier.
    pub model: ModelConfig,
    /// Passes over the training images.
    #[config(default = 5)]
    pub epochs: usize,
    /// Images per optimizer step.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Adam's learning rate (constant).
    #[config(default = 1e-3)]
    pub lr: f64,
    /// Seeds the initial weights and the shuffling.
    #[config(default = 42)]
    pub seed: u64,
    /// Train on the first N training images only.
    #[config(default = "None")]
    pub train_limit: Option<usize>,
    /// Keep the last N training images out of training and validate on them instead of the
    /// test set: hyper-parameters are chosen on these, never on the test set.
    #[config(default = "None")]
    pub holdout: Option<usize>,
    /// Evaluate on the first N test images only.
    #[config(default = "None")]
    pub test_limit: Option<usize>,
}

impl TrainingConfig {
    /// Checks the fields the types do not.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |msg: String| Err(TrainError::Config(msg));
        if self.epochs == 0 {
            return bad("--epochs must be >= 1".into());
        }
        if self.batch_size == 0 {
            return bad("--batch-size must be >= 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("--lr must be a positive number, got {}", self.lr));
        }
        if self.train_limit == Some(0) {
            return bad("--train-limit must be >= 1".into());
        }
        if let Some(holdout) = self.holdout
            && !(1..TRAIN_LEN).contains(&holdout)
        {
            return bad(format!(
                "--holdout must be in 1..{TRAIN_LEN}, got {holdout}"
            ));
        }
        if self.test_limit == Some(0) {
            return bad("--test-limit must be >= 1".into());
        }
        Ok(())
    }

    /// The training images used: `0..n`.
    pub fn train_range(&self) -> std::ops::Range<usize> {
        let pool = TRAIN_LEN - self.holdout.unwrap_or(0);
        0..self.train_limit.map_or(pool, |n| n.min(pool))
    }

    /// The held-out training images, if any.
    pub fn holdout_range(&self) -> Option<std::ops::Range<usize>> {
        self.holdout.map(|n| TRAIN_LEN - n..TRAIN_LEN)
    }

    /// The test images evaluated.
    pub fn test_range(&self) -> std::ops::Range<usize> {
        0..self.test_limit.map_or(TEST_LEN, |n| n.min(TEST_LEN))
    }
}

/// Why a run failed.
#[derive(Debug)]
pub enum TrainError {
    /// The data could not be made ready.
    Data(DataError),
    /// The model could not be built.
    Model(ModelError),
    /// Saving the model failed.
    Record {
        /// The file involved.
        path: PathBuf,
        /// The recorder's error.
        source: RecorderError,
    },
    /// Loading the model failed: missing, damaged, or not matching its configuration.
    Load {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        source: RbeError,
    },
    /// A flag or a saved configuration is invalid.
    Config(String),
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Data(err) => err.fmt(f),
            Self::Model(err) => err.fmt(f),
            Self::Record { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Load { path, source } => {
                write!(f, "cannot load the model {}: {source}", path.display())
            }
            Self::Config(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for TrainError {}

impl From<DataError> for TrainError {
    fn from(err: DataError) -> Self {
        Self::Data(err)
    }
}

impl From<ModelError> for TrainError {
    fn from(err: ModelError) -> Self {
        Self::Model(err)
    }
}

/// A trained model and how long training took.
pub struct Trained<B: Backend> {
    /// The model after the last epoch.
    pub model: Mlp<B>,
    /// Wall time of `Learner` fitting divided by the epochs; it includes the per-epoch
    /// validation pass the `Learner` always runs.
    pub seconds_per_epoch: f64,
}

/// Trains `config.model` with Adam (wrapped so the RBE state transitions apply) through the
/// `Learner`, printing progress on stderr and writing its logs under `artifact_dir`.
pub fn train<B>(
    config: &TrainingConfig,
    data: &Mnist,
    artifact_dir: &Path,
    device: &B::Device,
) -> Result<Trained<B::InnerBackend>, TrainError>
where
    B: RbeBackend + AutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    config.validate()?;
    B::seed(device, config.seed);
    let model = config.model.try_init::<B>(device)?;

    let train_range = config.train_range();
    let train_set = data.train(train_range.start, train_range.end);
    let valid_set: MnistSlice = match config.holdout_range() {
        Some(range) => data.train(range.start, range.end),
        None => {
            let range = config.test_range();
            data.test(range.start, range.end)
        }
    };
    let train_loader = DataLoaderBuilder::new(MnistBatcher)
        .batch_size(config.batch_size)
        .shuffle(config.seed)
        .set_device(device.clone())
        .build(train_set);
    let valid_loader = DataLoaderBuilder::<B::InnerBackend, _, _>::new(MnistBatcher)
        .batch_size(config.batch_size)
        .set_device(device.clone())
        .build(valid_set);

    // The wrapper moves the CORDIC bits from the transition counts each step, then Adam
    // updates (r, theta), residuals, biases and any dense layers as usual.
    let optim = RbeOptimizer::new(AdamConfig::new().init());
    let learner = Learner::new(model, optim, config.lr);
    let training = SupervisedTraining::new(artifact_dir, train_loader, valid_loader)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .num_epochs(config.epochs)
        .renderer(LineRenderer::new())
        // The default installs a process-wide logger; tests and the table share processes.
        .with_application_logger(None);

    let start = Instant::now();
    let result = training.launch(learner);
    let seconds = start.elapsed().as_secs_f64();
    Ok(Trained {
        model: result.model,
        seconds_per_epoch: seconds / config.epochs as f64,
    })
}

/// Correct predictions over a set of images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accuracy {
    /// Images classified correctly.
    pub correct: usize,
    /// Images evaluated.
    pub total: usize,
}

impl Accuracy {
    /// `correct / total`.
    pub fn fraction(&self) -> f64 {
        self.correct as f64 / self.total.max(1) as f64
    }
}

/// Classifies every image of `dataset` and counts the correct ones.
pub fn evaluate<B: RbeBackend>(
    model: &Mlp<B>,
    dataset: MnistSlice,
    batch_size: usize,
    device: &B::Device,
) -> Accuracy {
    let loader = DataLoaderBuilder::<B, _, _>::new(MnistBatcher)
        .batch_size(batch_size.max(1))
        .set_device(device.clone())
        .build(dataset);
    let mut accuracy = Accuracy {
        correct: 0,
        total: 0,
    };
    for batch in loader.iter() {
        let predicted = model.forward(batch.images).argmax(1).flatten::<1>(0, 1);
        accuracy.total += predicted.dims()[0];
        accuracy.correct += predicted
            .equal(batch.targets)
            .int()
            .sum()
            .into_scalar()
            .elem::<i64>() as usize;
    }
    accuracy
}

/// Path of the saved configuration that goes with a model file.
fn config_path(model_path: &Path) -> PathBuf {
    model_path.with_extension("json")
}

/// `path` without the recorder's extension, the form the recorder takes.
fn model_stem<B: Backend>(path: &Path) -> PathBuf {
    let extension = <ModelRecorder as FileRecorder<B>>::file_extension();
    match path.extension() {
        Some(ext) if ext == extension => path.with_extension(""),
        _ => path.to_path_buf(),
    }
}

/// Saves the model to `<path>.rbe` (the recorder's extension) and its configuration to
/// `<path>.json`; returns the model file's path.
pub fn save<B: Backend>(
    model: &Mlp<B>,
    config: &TrainingConfig,
    path: &Path,
) -> Result<PathBuf, TrainError> {
    let stem = model_stem::<B>(path);
    if let Some(folder) = stem.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|err| TrainError::Record {
            path: folder.to_path_buf(),
            source: RecorderError::Unknown(err.to_string()),
        })?;
    }
    let json = config_path(&stem);
    config.save(&json).map_err(|err| TrainError::Record {
        path: json.clone(),
        source: RecorderError::Unknown(err.to_string()),
    })?;
    model
        .clone()
        .save_file(stem.clone(), &ModelRecorder::new())
        .map_err(|source| TrainError::Record {
            path: stem.clone(),
            source,
        })?;
    Ok(stem.with_extension(<ModelRecorder as FileRecorder<B>>::file_extension()))
}

/// Loads what [`save`] wrote: rebuilds the model from `<path>.json`, then loads the record.
pub fn load<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<(Mlp<B>, TrainingConfig), TrainError> {
    let stem = model_stem::<B>(path);
    let json = config_path(&stem);
    let config = TrainingConfig::load(&json).map_err(|err| {
        TrainError::Config(format!(
            "cannot read the model's configuration {}: {err}",
            json.display()
        ))
    })?;
    let model = config.model.try_init::<B>(device)?;
    let load_error = |source: RbeError| TrainError::Load {
        path: stem.clone(),
        source,
    };
    // Burn panics when a record holds another layer variant than the model: check first.
    let record: MlpRecord<B> = Recorder::<B>::load(&ModelRecorder::new(), stem.clone(), device)
        .map_err(|err| load_error(err.into()))?;
    for (name, layer, saved) in [
        ("hidden", &model.hidden, &record.hidden),
        ("head", &model.head, &record.head),
    ] {
        let (want, got) = (layer.kind_name(), record_kind_name(saved));
        if want != got {
            return Err(TrainError::Config(format!(
                "cannot load the model {}: its {name} layer is {got}, but {} describes {want}",
                stem.display(),
                json.display()
            )));
        }
    }
    // Checks the file's integrity and every parameter's shape against the configuration.
    let model =
        rbe::load_checked(model, &stem, &ModelRecorder::new(), device).map_err(load_error)?;
    Ok((model, config))
}
