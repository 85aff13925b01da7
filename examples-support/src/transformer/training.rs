//! The training loop and the validation loss.
//!
//! A custom loop rather than burn-train's `Learner`: the run needs exact control of the
//! token budget (one random batch per step, no epochs), a throughput figure that excludes
//! evaluation, and one validation pass at the end. The optimizer is Adam wrapped in
//! [`RbeOptimizer`], so every step first applies the paper's state transitions to the
//! CORDIC bits and then updates `r`, `theta`, residuals, biases and the dense parameters.
//! A step that would make a parameter NaN or infinite is refused by the wrapper, and the
//! loop stops with [`TrainError::Refused`]: the model never leaves its last finite state.

use std::fmt;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rbe_burn::{RbeAutodiffBackend, RbeBackend, RbeOptimizer};

use super::data::{Corpus, TokenBatch, eval_windows};
use super::model::Gpt;

/// Everything about one training run except the model.
#[derive(Config, Debug)]
pub struct TrainingConfig {
    /// Optimizer steps; each sees one batch of random windows.
    pub steps: usize,
    /// Windows per batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Seeds the batch sampler.
    #[config(default = 0)]
    pub seed: u64,
    /// Steps of linear warmup; the rest decays along a cosine to 10% of `lr`.
    #[config(default = 50)]
    pub warmup_steps: usize,
    /// Gradient-norm clip, applied per parameter tensor as Burn does; keeps the first steps
    /// of both the dense and the RBE model from overshooting.
    #[config(default = 1.0)]
    pub grad_clip: f32,
    /// Progress is reported every this many steps (and at the last one).
    #[config(default = 25)]
    pub log_every: usize,
}

impl TrainingConfig {
    /// The learning rate at `step` (0-based).
    pub fn lr_at(&self, step: usize) -> f64 {
        let warmup = self.warmup_steps.min(self.steps / 2).max(1);
        if step < warmup {
            return self.lr * (step + 1) as f64 / warmup as f64;
        }
        let progress = (step - warmup) as f64 / (self.steps - warmup).max(1) as f64;
        self.lr * (0.1 + 0.45 * (1.0 + (std::f64::consts::PI * progress).cos()))
    }

    /// Checks the values a run cannot start with.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.steps == 0 || self.batch_size == 0 || self.log_every == 0 {
            return Err(TrainError::Config(
                "steps, batch size and log interval must be positive".into(),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::Config(format!(
                "learning rate must be > 0, got {}",
                self.lr
            )));
        }
        Ok(())
    }
}

/// Why training stopped.
#[derive(Debug)]
pub enum TrainError {
    /// A setting is out of range.
    Config(String),
    /// The loss became NaN or infinite.
    Diverged {
        /// The step at which it happened.
        step: usize,
    },
    /// An optimizer step would have made a parameter NaN or infinite; `RbeOptimizer`
    /// refused it, and training stops there rather than go on refusing steps.
    Refused {
        /// The refused step (1-based).
        step: usize,
        /// What the optimizer reported: the parameter.
        param: String,
        /// The learning rate of that step.
        lr: f64,
    },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(msg) => write!(f, "invalid training configuration: {msg}"),
            Self::Diverged { step } => write!(
                f,
                "training diverged: the loss is not finite at step {step} (try a lower --lr)"
            ),
            Self::Refused { step, param, lr } => write!(
                f,
                "training diverged: optimizer step {step} (learning rate {lr:.3e}) would have \
                 made the parameter `{param}` NaN or infinite, so it was refused and training \
                 stopped (try a lower --lr)"
            ),
        }
    }
}

impl std::error::Error for TrainError {}

/// What the loop reports every `log_every` steps.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Steps done.
    pub step: usize,
    /// Of how many.
    pub steps: usize,
    /// Mean training loss since the previous report, in nats.
    pub loss: f64,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Training tokens per second so far.
    pub tokens_per_s: f64,
    /// Seconds since the first step.
    pub elapsed_s: f64,
}

/// A trained model and how the run went.
#[derive(Debug)]
pub struct Trained<B: Backend> {
    /// The model after the last step.
    pub model: Gpt<B>,
    /// Mean training loss over the last report interval, in nats.
    pub train_loss: f64,
    /// Training tokens (`batch * context` per step) per second of training.
    pub tokens_per_s: f64,
    /// Seconds spent in training steps.
    pub train_s: f64,
}

/// Trains `model` on `corpus.train` for `config.steps` steps.
pub fn train<B>(
    mut model: Gpt<B>,
    corpus: &Corpus,
    config: &TrainingConfig,
    device: &B::Device,
    mut report: impl FnMut(&Progress),
) -> Result<Trained<B>, TrainError>
where
    B: RbeAutodiffBackend,
{
    config.validate()?;
    let context = model.context();
    let mut optimizer = RbeOptimizer::new(
        AdamConfig::new()
            .with_grad_clipping(Some(GradientClippingConfig::Norm(config.grad_clip)))
            .init::<B, Gpt<B>>(),
    );
    let mut rng = StdRng::seed_from_u64(config.seed);
    let start = Instant::now();
    let (mut interval_loss, mut interval_steps) = (0.0, 0usize);
    let mut last = Progress {
        step: 0,
        steps: config.steps,
        loss: f64::NAN,
        lr: 0.0,
        tokens_per_s: 0.0,
        elapsed_s: 0.0,
    };

    for step in 0..config.steps {
        let batch =
            TokenBatch::<B>::random(&corpus.train, config.batch_size, context, &mut rng, device);
        let loss = model.loss(batch.inputs, batch.targets);
        // Reading the loss back every step also synchronises asynchronous backends, so the
        // throughput below measures finished work.
        let loss_value: f64 = loss.clone().into_scalar().elem();
        if !loss_value.is_finite() {
            return Err(TrainError::Diverged { step });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = config.lr_at(step);
        model = optimizer.step(lr, model, grads);
        if let Some(err) = optimizer.take_rejected() {
            let param = match err {
                rbe_burn::RbeError::NonFinite(what) => what
                    .strip_suffix(" (optimizer step refused)")
                    .map_or_else(|| what.clone(), str::to_string),
                other => other.to_string(),
            };
            return Err(TrainError::Refused {
                step: step + 1,
                param,
                lr,
            });
        }

        interval_loss += loss_value;
        interval_steps += 1;
        let done = step + 1;
        if done.is_multiple_of(config.log_every) || done == config.steps {
            let elapsed_s = start.elapsed().as_secs_f64();
            last = Progress {
                step: done,
                steps: config.steps,
                loss: interval_loss / interval_steps as f64,
                lr,
                tokens_per_s: (done * config.batch_size * context) as f64 / elapsed_s,
                elapsed_s,
            };
            report(&last);
            (interval_loss, interval_steps) = (0.0, 0);
        }
    }
    Ok(Trained {
        model,
        train_loss: last.loss,
        tokens_per_s: last.tokens_per_s,
        train_s: last.elapsed_s,
    })
}

/// Mean next-character loss in nats over up to `max_windows` non-overlapping windows of
/// `ids`, on the inference backend (no autodiff graph).
pub fn evaluate<B>(model: &Gpt<B>, ids: &[u32], max_windows: usize) -> f64
where
    B: RbeAutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    evaluate_inner(&model.valid(), ids, max_windows)
}

/// [`evaluate`] for a model already on a non-autodiff backend.
pub fn evaluate_inner<B: RbeBackend>(model: &Gpt<B>, ids: &[u32], max_windows: usize) -> f64 {
    // Batches of this many windows keep the attention scores small on the host.
    const EVAL_BATCH: usize = 32;
    let context = model.context();
    let device = model.device();
    let windows = eval_windows(ids.len(), context, max_windows);
    let mut total = 0.0;
    for chunk in windows.chunks(EVAL_BATCH) {
        let batch = TokenBatch::<B>::from_windows(ids, chunk, context, &device);
        let loss: f64 = model.loss(batch.inputs, batch.targets).into_scalar().elem();
        // Every window has `context` targets, so weighting by windows is exact.
        total += loss * chunk.len() as f64;
    }
    total / windows.len() as f64
}
