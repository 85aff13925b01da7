//! A whole run: train, evaluate and save (or reload and evaluate), then report.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::prelude::Backend;
use rbe_burn::RbeBackend;

use super::data::{DataDir, Mnist};
use super::report::{ReportInputs, RunReport};
use super::training::{self, Parallelism, TrainError, TrainingConfig};
use crate::backend::{BackendJob, BackendKind};

/// Batch size for evaluation: larger than training's, since no gradients are kept.
pub(crate) const EVAL_BATCH: usize = 500;

/// Trains `config`, evaluates it on the test images (or, in a hold-out run, on the held-out
/// training images only), saves it as `<artifact_dir>/model.{rbe,json}` and reports.
///
/// A run whose training diverges ([`TrainError::Diverged`]) or whose model is not finite
/// ([`TrainError::NonFinite`]) saves nothing, so a model saved there earlier stays.
pub struct TrainJob {
    /// The classifier, the optimizer settings, the seed and which images to use.
    pub config: TrainingConfig,
    /// Where the `Learner` logs and the model go.
    pub artifact_dir: PathBuf,
    /// Where the MNIST files come from.
    pub data_dir: DataDir,
    /// The flag that chooses `artifact_dir`, for the note when it holds an earlier run.
    pub artifact_flag: &'static str,
    /// How many devices to train on.
    pub parallelism: Parallelism,
}

impl BackendJob for TrainJob {
    type Output = Result<RunReport, TrainError>;

    fn run<B: RbeBackend>(self, device: B::Device, kind: BackendKind) -> Self::Output {
        let Self {
            config,
            artifact_dir,
            data_dir,
            artifact_flag,
            parallelism,
        } = self;
        config.validate()?;
        let placement = parallelism.place::<B>(kind, &device)?;
        let model_stem = artifact_dir.join("model");
        let earlier = note_earlier_model::<B>(&artifact_dir, artifact_flag);
        let data = Mnist::load(&data_dir)?;
        let trained = training::train_on::<Autodiff<B>>(&config, &data, &artifact_dir, &placement)
            .inspect_err(|err| note_kept_model(err, &earlier))?;
        let model = trained.model;

        let valid = config.holdout_range().map(|range| {
            training::evaluate(
                &model,
                data.train(range.start, range.end),
                EVAL_BATCH,
                &device,
            )
        });
        // Hold-out runs choose hyper-parameters: they never look at the test set.
        let test = config.holdout.is_none().then(|| {
            let range = config.test_range();
            training::evaluate(
                &model,
                data.test(range.start, range.end),
                EVAL_BATCH,
                &device,
            )
        });
        let model_path = training::save(&model, &config, &model_stem)?;
        Ok(RunReport::new(ReportInputs {
            config: &config,
            bytes: model.bytes(),
            valid,
            test,
            seconds_per_epoch: Some(trained.seconds_per_epoch),
            backend: kind.name(),
            model_path: &model_path,
        })
        .with_devices(placement.devices.len(), placement.ddp))
    }
}

/// The model an earlier run saved in `artifact_dir`, if any, after saying on stderr that this
/// run replaces it; `artifact_flag` is the flag that chooses another folder.
pub(crate) fn note_earlier_model<B: Backend>(
    artifact_dir: &Path,
    artifact_flag: &str,
) -> Option<PathBuf> {
    let earlier = training::model_paths::<B>(&artifact_dir.join("model"));
    let earlier = earlier.exists().then_some(earlier.weights)?;
    eprintln!(
        "note: {} holds an earlier run's model; this run replaces it (and its .json) when \
         training succeeds, and writes its logs over the earlier ones in {} (pass another \
         {artifact_flag} to keep them)",
        earlier.display(),
        artifact_dir.display()
    );
    Some(earlier)
}

/// Says on stderr that `earlier` (from [`note_earlier_model`]) is still there when `err`
/// stopped training before anything was saved over it.
pub(crate) fn note_kept_model(err: &TrainError, earlier: &Option<PathBuf>) {
    if let (TrainError::Diverged { .. }, Some(path)) = (err, earlier) {
        eprintln!(
            "note: {} still holds the earlier run's model",
            path.display()
        );
    }
}

/// Reloads a model saved by [`TrainJob`] and evaluates it on the test images.
pub struct EvalJob {
    /// The saved model (`model.rbe`, with `model.json` beside it).
    pub path: PathBuf,
    /// Evaluate on the first N test images only; `None` keeps the saved run's setting.
    pub test_limit: Option<usize>,
    /// Where the MNIST files come from.
    pub data_dir: DataDir,
}

impl BackendJob for EvalJob {
    type Output = Result<RunReport, TrainError>;

    fn run<B: RbeBackend>(self, device: B::Device, kind: BackendKind) -> Self::Output {
        // No gradients are needed: the backend itself evaluates.
        let (model, mut config) = training::load::<B>(&self.path, &device)?;
        if self.test_limit.is_some() {
            config.test_limit = self.test_limit;
        }
        // A model that was only encoded is saved with 0 epochs.
        config.validate_except_epochs()?;
        let data = Mnist::load(&self.data_dir)?;
        let test_range = config.test_range();
        let test = training::evaluate(
            &model,
            data.test(test_range.start, test_range.end),
            EVAL_BATCH,
            &device,
        );
        Ok(RunReport::new(ReportInputs {
            config: &config,
            bytes: model.bytes(),
            valid: None,
            test: Some(test),
            seconds_per_epoch: None,
            backend: kind.name(),
            model_path: &self.path,
        }))
    }
}
