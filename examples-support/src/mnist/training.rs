//! Training with burn-train's `Learner`, evaluation, and saving and reloading the model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::{Arc, Mutex};

use burn::data::dataloader::DataLoaderBuilder;
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, MultiGradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{FileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ExecutionStrategy, Interrupter, Learner, MultiDeviceOptim, SupervisedTraining};
use rbe_burn::{BopConfig, RbeAutodiffBackend, RbeBackend, RbeError, RbeOptimizer};

use super::data::{DataError, Mnist, MnistBatcher, MnistSlice, TEST_LEN, TRAIN_LEN};
use super::model::{Mlp, MlpRecord, ModelConfig, ModelError};
use super::progress::LineRenderer;
use crate::backend::{BackendKind, DevicesError};
use crate::layer::record_kind_name;
use crate::parallel::{DataParallel, ParallelError};
use crate::saved_pair::{self, PairError, PairPaths};

/// How models are saved: Burn's full-precision named-MessagePack record behind a length and
/// CRC-32 header, so RBE seeds (f32 `r`, `theta`, i32 bit halves) round-trip bit for bit and
/// a damaged file is an error rather than a silently different model. Any full-precision
/// `FileRecorder` (e.g. `burn::record::DefaultRecorder`) can replace it here.
pub type ModelRecorder = rbe_burn::RbeRecorder;

/// One training run; saved beside the model, so a reload rebuilds the same classifier.
#[derive(Config, Debug)]
pub struct TrainingConfig {
    /// The layers of the classifier and their settings.
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
    /// Bop's `gamma` for sign-blueprint bits that flip (`BitTraining::Flip`).
    #[config(default = 1e-2)]
    pub bop_gamma: f64,
    /// Bop's flip threshold `tau`.
    #[config(default = 1e-6)]
    pub bop_tau: f64,
}

impl TrainingConfig {
    /// Checks the fields the types do not, for a run that trains.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.epochs == 0 {
            return Err(TrainError::Config("--epochs must be >= 1".into()));
        }
        self.validate_except_epochs()
    }

    /// [`TrainingConfig::validate`] without the epoch count: a model that was only encoded,
    /// never trained, is saved with 0 epochs and still evaluates.
    pub fn validate_except_epochs(&self) -> Result<(), TrainError> {
        let bad = |msg: String| Err(TrainError::Config(msg));
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
    /// Saving the model failed; a model saved there before is unchanged.
    Save {
        /// The model file.
        path: PathBuf,
        /// What went wrong.
        source: PairError,
    },
    /// The model holds NaN or infinity, so it was not saved; a model saved there before is
    /// unchanged.
    NonFinite {
        /// The model file that was not written.
        path: PathBuf,
        /// The first non-finite parameter.
        param: String,
    },
    /// An optimizer step would have made a parameter NaN or infinite: the step was refused
    /// and training stopped there.
    Diverged {
        /// The refused optimizer step (1-based, counted over all epochs).
        step: usize,
        /// The epoch it belongs to (1-based).
        epoch: usize,
        /// The parameter the step would have made non-finite.
        param: String,
        /// The learning rate of the run.
        lr: f64,
    },
    /// Loading the model failed: missing, damaged, or not matching its configuration.
    Load {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        source: RbeError,
    },
    /// The saved model's files are missing, damaged or do not belong together.
    Checkpoint(PairError),
    /// A flag or a saved configuration is invalid.
    Config(String),
    /// `--devices` asked for devices the backend does not offer.
    Devices(DevicesError),
    /// Data-parallel training with a replica per device (`--ddp`) stopped: a replica's
    /// parameters differed from the others' after a step. Nothing was saved.
    Replicas(ParallelError),
    /// The model given to start from (`--init-from`) is not the dense model this run
    /// compresses.
    InitFrom {
        /// The saved model.
        path: PathBuf,
        /// What differs.
        source: InitFromMismatch,
    },
}

/// How a model given to start from differs from the dense model the run expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitFromMismatch {
    /// A layer is not a dense `Linear`.
    NotDense {
        /// `hidden` or `head`.
        layer: &'static str,
        /// What it is instead (`Rbe`, `LowRank`).
        kind: &'static str,
    },
    /// A layer's weight has another shape (`[d_input, d_output]`, as Burn's `Linear` stores
    /// it), e.g. another hidden width.
    Shape {
        /// `hidden` or `head`.
        layer: &'static str,
        /// The shape this run builds.
        expected: [usize; 2],
        /// The saved layer's.
        found: [usize; 2],
    },
}

impl std::fmt::Display for InitFromMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotDense { layer, kind } => {
                write!(f, "its {layer} layer is {kind}, not a dense Linear")
            }
            Self::Shape {
                layer,
                expected: [ei, eo],
                found: [fi, fo],
            } => write!(
                f,
                "its {layer} layer maps {fi} -> {fo} features, but this run builds {ei} -> {eo}"
            ),
        }
    }
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Data(err) => err.fmt(f),
            Self::Model(err) => err.fmt(f),
            Self::Save { path, source } => write!(
                f,
                "cannot save the model {}: {source} (a model saved there before is unchanged)",
                path.display()
            ),
            Self::NonFinite { path, param } => write!(
                f,
                "not saving the model {}: its parameter `{param}` holds NaN or infinity \
                 (training diverged; try a lower --lr). A model saved there before is unchanged",
                path.display()
            ),
            Self::Diverged {
                step,
                epoch,
                param,
                lr,
            } => write!(
                f,
                "training diverged: optimizer step {step} (epoch {epoch}) would have made the \
                 parameter `{param}` NaN or infinite, so the step was refused and training \
                 stopped. Nothing was saved. Try a lower --lr (this run used {lr:?})"
            ),
            Self::Load { path, source } => {
                write!(f, "cannot load the model {}: {source}", path.display())
            }
            Self::Checkpoint(err) => write!(f, "cannot load the model: {err}"),
            Self::Config(msg) => f.write_str(msg),
            Self::Devices(err) => write!(f, "{err}; nothing was trained"),
            Self::Replicas(err) => write!(f, "{err}; training stopped and nothing was saved"),
            Self::InitFrom { path, source } => write!(
                f,
                "cannot start from {}: {source}; --init-from takes a model saved by a \
                 --model dense run of the same hidden width. Nothing was written",
                path.display()
            ),
        }
    }
}

impl std::error::Error for TrainError {}

impl From<DevicesError> for TrainError {
    fn from(err: DevicesError) -> Self {
        Self::Devices(err)
    }
}

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

/// The parameter an [`RbeError::NonFinite`] names, else the whole error.
fn non_finite_param(err: &RbeError) -> String {
    match err {
        RbeError::NonFinite(what) => what
            .strip_suffix(" (optimizer step refused)")
            .unwrap_or(what)
            .to_string(),
        other => other.to_string(),
    }
}

/// What [`Guarded`] has seen.
#[derive(Debug, Default)]
struct GuardState {
    /// Optimizer steps taken (refused ones included).
    steps: usize,
    /// The first refused step and the parameter it would have made non-finite.
    refused: Option<(usize, String)>,
}

/// [`RbeOptimizer`] that stops the `Learner` at the first refused step.
///
/// `RbeOptimizer` refuses a step that would make a parameter non-finite and keeps the model
/// as it was; under the `Learner` nothing else would notice, and training would go on
/// refusing steps. This wrapper asks the `Learner` to stop instead (through its
/// [`Interrupter`]) and remembers the step, so [`train`] can report it.
#[derive(Clone)]
struct Guarded<O> {
    inner: RbeOptimizer<O>,
    interrupter: Interrupter,
    state: Arc<Mutex<GuardState>>,
}

impl<O> Guarded<O> {
    fn after_step(&mut self) {
        let refused = self.inner.take_rejected();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.steps += 1;
        if let Some(err) = refused
            && state.refused.is_none()
        {
            state.refused = Some((state.steps, non_finite_param(&err)));
            self.interrupter.stop(Some(
                "an optimizer step would have made the model non-finite",
            ));
        }
    }
}

impl<O, M, B> Optimizer<M, B> for Guarded<O>
where
    O: Optimizer<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
    B::InnerBackend: rbe_burn::RbeBackend,
{
    type Record = O::Record;

    fn step(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        let module = self.inner.step(lr, module, grads);
        self.after_step();
        module
    }

    fn step_multi(&mut self, lr: f64, module: M, grads: MultiGradientsParams) -> M {
        let module = self.inner.step_multi(lr, module, grads);
        self.after_step();
        module
    }

    fn to_record(&self) -> Self::Record {
        self.inner.to_record()
    }

    fn load_record(self, record: Self::Record) -> Self {
        Self {
            inner: self.inner.load_record(record),
            interrupter: self.interrupter,
            state: self.state,
        }
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

/// `--devices` and `--ddp`: how many devices to train on, before the backend is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallelism {
    /// Devices (replicas) to train on.
    pub devices: usize,
    /// Keep a full replica and optimizer per device (see [`Placement::ddp`]).
    pub ddp: bool,
}

impl Default for Parallelism {
    fn default() -> Self {
        Self {
            devices: 1,
            ddp: false,
        }
    }
}

impl Parallelism {
    /// The devices of backend `B` (`kind`) to train on, `device` first.
    ///
    /// # Errors
    /// [`DevicesError`] before anything trains: no devices, more than the backend offers
    /// (see [`crate::backend::devices`]), or `--ddp` on a single device.
    pub fn place<B: Backend>(
        self,
        kind: BackendKind,
        device: &B::Device,
    ) -> Result<Placement<B::Device>, DevicesError> {
        if self.ddp && self.devices == 1 {
            return Err(DevicesError::DdpAlone);
        }
        Ok(Placement {
            devices: crate::backend::devices::<B>(kind, self.devices, device)?,
            ddp: self.ddp,
        })
    }
}

/// Where training runs: one device, or several in data parallel (`--devices`, `--ddp`).
///
/// With several devices each step takes one batch of `batch_size` images per device and
/// sums their gradients: one step sees `devices.len() * batch_size` images, and an epoch
/// takes about `1 / devices.len()` as many steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement<D> {
    /// The devices; the model on the first is the one validated, returned and saved.
    pub devices: Vec<D>,
    /// Every device keeps a replica of the model and of the optimizer, applies the summed
    /// gradients itself and is checked against the others after every step (distributed
    /// data parallel). Without it, Burn's multi-device strategy keeps one model and one
    /// optimizer on the first device and only the gradients come from the others.
    pub ddp: bool,
}

impl<D: Clone> Placement<D> {
    /// Everything on `device`.
    pub fn single(device: &D) -> Self {
        Self {
            devices: vec![device.clone()],
            ddp: false,
        }
    }

    /// The device that holds the model returned.
    ///
    /// # Panics
    /// If `devices` is empty.
    pub fn main(&self) -> &D {
        self.devices.first().expect("a placement has a device")
    }

    /// Optimizer steps in one epoch over `len` items. The data is split among the devices
    /// in equal contiguous shares, the remainder to the last (Burn's `split_dataloader`):
    /// Burn's multi-device strategy steps until the largest share is done, the replicas of
    /// [`DataParallel`] stop together at the end of the smallest.
    fn steps_per_epoch(&self, len: usize, batch_size: usize) -> usize {
        let n = self.devices.len().max(1);
        let share = if self.ddp {
            len / n
        } else {
            len - (n - 1) * (len / n)
        };
        share.div_ceil(batch_size).max(1)
    }

    /// Replicas that each count every optimizer step: one per device under `ddp`.
    fn counting_replicas(&self) -> usize {
        if self.ddp { self.devices.len() } else { 1 }
    }
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
    B: RbeAutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    train_on::<B>(config, data, artifact_dir, &Placement::single(device))
}

/// [`train`] on the devices of `placement`.
pub fn train_on<B>(
    config: &TrainingConfig,
    data: &Mnist,
    artifact_dir: &Path,
    placement: &Placement<B::Device>,
) -> Result<Trained<B::InnerBackend>, TrainError>
where
    B: RbeAutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    config.validate()?;
    if placement.devices.is_empty() {
        return Err(DevicesError::None.into());
    }
    super::peak_rss::reset_peak_rss();
    let device = placement.main();
    B::seed(device, config.seed);
    let model = config.model.try_init::<B>(device)?;
    train_model(config, model, data, artifact_dir, placement)
}

/// [`train`] from a given model instead of a fresh one (e.g. a compressed trained model):
/// the same data, optimizer, `Learner` and divergence handling. `config.model` must describe
/// `model`, since the result is saved with it.
pub fn train_model<B>(
    config: &TrainingConfig,
    model: Mlp<B>,
    data: &Mnist,
    artifact_dir: &Path,
    placement: &Placement<B::Device>,
) -> Result<Trained<B::InnerBackend>, TrainError>
where
    B: RbeAutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    config.validate()?;
    if placement.devices.is_empty() {
        return Err(DevicesError::None.into());
    }
    let device = placement.main();
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
    // updates (r, theta), residuals, biases and any dense layers as usual. A step that would
    // make a parameter non-finite is refused and stops training (see `Guarded`).
    let interrupter = Interrupter::new();
    let guard = Arc::new(Mutex::new(GuardState::default()));
    let optim = Guarded {
        inner: RbeOptimizer::new(AdamConfig::new().init())
            .with_bit_flips(BopConfig {
                gamma: config.bop_gamma,
                tau: config.bop_tau,
            })
            .map_err(|err| TrainError::Model(ModelError::Rbe(err)))?,
        interrupter: interrupter.clone(),
        state: guard.clone(),
    };
    let learner = Learner::new(model, optim, config.lr);
    let mut training = SupervisedTraining::new(artifact_dir, train_loader, valid_loader)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .num_epochs(config.epochs)
        .renderer(LineRenderer::new())
        .with_interrupter(interrupter)
        // The default installs a process-wide logger; tests and the table share processes.
        .with_application_logger(None);
    let mut replicas = None;
    if placement.ddp {
        let parallel =
            DataParallel::new(placement.devices.clone()).map_err(TrainError::Replicas)?;
        replicas = Some(parallel.outcome());
        training = training.with_training_strategy(parallel.into_strategy());
    } else if placement.devices.len() > 1 {
        // The optimizer stays on the first device: sharding it would put a layer's bits,
        // latent weights and seeds' floats on different devices.
        training = training.with_training_strategy(
            ExecutionStrategy::multi(placement.devices.clone(), MultiDeviceOptim::OptimMainDevice)
                .into(),
        );
    }

    let start = Instant::now();
    let result = training.launch(learner);
    let seconds = start.elapsed().as_secs_f64();
    let refused = guard
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .refused
        .take();
    if let Some(outcome) = replicas {
        outcome.result().map_err(TrainError::Replicas)?;
    }
    if let Some((count, param)) = refused {
        // Every replica's optimizer counts each step in the shared state.
        let step = (count - 1) / placement.counting_replicas() + 1;
        let steps_per_epoch = placement.steps_per_epoch(train_range.len(), config.batch_size);
        return Err(TrainError::Diverged {
            step,
            epoch: (step - 1) / steps_per_epoch + 1,
            param,
            lr: config.lr,
        });
    }
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

/// `path` without the recorder's extension (or `.json`), the form the recorder takes.
fn model_stem<B: Backend>(path: &Path) -> PathBuf {
    let extension = <ModelRecorder as FileRecorder<B>>::file_extension();
    match path.extension() {
        Some(ext) if ext == extension || ext == "json" => path.with_extension(""),
        _ => path.to_path_buf(),
    }
}

/// The files of the model saved as `path`: `<stem>.rbe` (the recorder's extension) and
/// `<stem>.json`, where `path` is the stem or either file.
pub fn model_paths<B: Backend>(path: &Path) -> PairPaths {
    PairPaths::new(
        &model_stem::<B>(path),
        <ModelRecorder as FileRecorder<B>>::file_extension(),
    )
}

/// Saves the model to `<path>.rbe` (the recorder's extension) and its configuration to
/// `<path>.json`, together: see [`saved_pair`] for how an interrupted or failed save keeps a
/// model saved there before. Returns the model file's path.
///
/// A model holding NaN or infinity is refused ([`TrainError::NonFinite`]) before any file is
/// touched.
pub fn save<B: Backend>(
    model: &Mlp<B>,
    config: &TrainingConfig,
    path: &Path,
) -> Result<PathBuf, TrainError> {
    let paths = model_paths::<B>(path);
    rbe_burn::check_finite(model).map_err(|err| TrainError::NonFinite {
        path: paths.weights.clone(),
        param: non_finite_param(&err),
    })?;
    saved_pair::write_module(&paths, config, model.clone(), &ModelRecorder::new()).map_err(
        |source| TrainError::Save {
            path: paths.weights.clone(),
            source,
        },
    )?;
    Ok(paths.weights)
}

/// Loads what [`save`] wrote: checks that the two files belong together, rebuilds the model
/// from `<path>.json`, then loads the record through [`rbe_burn::load_checked`].
pub fn load<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<(Mlp<B>, TrainingConfig), TrainError> {
    let paths = model_paths::<B>(path);
    let meta = saved_pair::read(&paths).map_err(TrainError::Checkpoint)?;
    let config: TrainingConfig = serde_json::from_value(meta).map_err(|err| {
        TrainError::Config(format!(
            "cannot read the model's configuration {}: {err}",
            paths.meta.display()
        ))
    })?;
    let model = config.model.try_init::<B>(device)?;
    let weights = paths.weights.clone();
    let load_error = |source: RbeError| TrainError::Load {
        path: weights.clone(),
        source,
    };
    // Burn panics when a record holds another layer variant than the model (`load_checked`
    // catches that too, but this names the layers).
    let record: MlpRecord<B> =
        Recorder::<B>::load(&ModelRecorder::new(), paths.weights.clone(), device)
            .map_err(|err| load_error(err.into()))?;
    for (name, layer, saved) in [
        ("hidden", &model.hidden, &record.hidden),
        ("head", &model.head, &record.head),
    ] {
        let (want, got) = (layer.kind_name(), record_kind_name(saved));
        if want != got {
            return Err(TrainError::Config(format!(
                "cannot load the model {}: its {name} layer is {got}, but {} describes {want}",
                paths.weights.display(),
                paths.meta.display()
            )));
        }
    }
    // Checks the file's integrity and every parameter's shape against the configuration.
    let model = rbe_burn::load_checked(model, &paths.weights, &ModelRecorder::new(), device)
        .map_err(load_error)?;
    Ok((model, config))
}
