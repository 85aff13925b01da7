//! The training loop and the validation loss.
//!
//! A custom loop rather than burn-train's `Learner`: the run needs exact control of the
//! token budget (one random batch per step, no epochs), a throughput figure that excludes
//! evaluation, and one validation pass at the end. The optimizer is Adam wrapped in
//! [`RbeOptimizer`], so every step first applies the paper's state transitions to the
//! CORDIC bits and then updates `r`, `theta`, residuals, biases and the dense parameters.
//! A step that would make a parameter NaN or infinite is refused by the wrapper, and the
//! loop stops with [`TrainError::Refused`]: the model never leaves its last finite state.
//!
//! A model compressed from a trained dense one can be fine-tuned against that dense model
//! ([`Teacher`]): the loss then mixes the cross-entropy with the KL divergence from the
//! teacher's softened predictions ([`distillation_loss`]).

use std::fmt;
use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rbe_burn::{RbeAutodiffBackend, RbeBackend, RbeOptimizer};

use super::data::{Corpus, TokenBatch, eval_windows};
use super::model::{Gpt, cross_entropy};

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
    /// A distillation temperature that is not a positive finite number, or a weight
    /// outside `[0, 1]`.
    Distillation {
        /// The temperature asked for.
        temperature: f64,
        /// The weight asked for.
        weight: f64,
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
            Self::Distillation {
                temperature,
                weight,
            } => write!(
                f,
                "invalid distillation: the temperature must be a positive finite number and \
                 the weight in [0, 1], got temperature {temperature} and weight {weight}"
            ),
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

/// How a student is fitted to its teacher: `loss = (1 - weight) CE(student) + weight T²
/// KL(softmax(teacher / T) ‖ softmax(student / T))`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Distillation {
    /// `T`: above 1 softens both distributions so the teacher's ranking of the wrong
    /// characters carries signal too; `T²` keeps the KL term's gradient at the scale of the
    /// cross-entropy's as `T` changes.
    pub temperature: f64,
    /// The share of the KL term, in `[0, 1]`; 0 is plain cross-entropy.
    pub weight: f64,
}

impl Distillation {
    /// Checks `temperature > 0` (finite) and `0 <= weight <= 1`.
    pub fn new(temperature: f64, weight: f64) -> Result<Self, TrainError> {
        if temperature.is_finite() && temperature > 0.0 && (0.0..=1.0).contains(&weight) {
            Ok(Self {
                temperature,
                weight,
            })
        } else {
            Err(TrainError::Distillation {
                temperature,
                weight,
            })
        }
    }
}

/// The model a student is distilled from, on the inference backend: its logits need no
/// gradient, and running it without the autodiff graph costs a plain forward pass.
#[derive(Debug)]
pub struct Teacher<B: Backend> {
    /// The trained model.
    pub model: Gpt<B>,
    /// How its predictions weigh in the loss.
    pub distillation: Distillation,
}

/// `(1 - w) CE(student, targets) + w T² KL(softmax(teacher / T) ‖ softmax(student / T))`,
/// the KL term averaged over positions like the cross-entropy. The teacher's logits are
/// detached: no gradient flows into them.
///
/// # Shapes
/// - student, teacher: `[batch, seq, vocab_size]`
/// - targets: `[batch, seq]`
/// - output: `[1]`
pub fn distillation_loss<B: Backend>(
    student: Tensor<B, 3>,
    teacher: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    distillation: &Distillation,
) -> Tensor<B, 1> {
    let Distillation {
        temperature,
        weight,
    } = *distillation;
    let [batch, seq, vocab] = student.dims();
    let positions = batch * seq;
    let ce = cross_entropy(student.clone(), targets);
    let student = log_softmax(
        student.reshape([positions, vocab]).div_scalar(temperature),
        1,
    );
    let teacher = teacher
        .detach()
        .reshape([positions, vocab])
        .div_scalar(temperature);
    let teacher_log = log_softmax(teacher.clone(), 1);
    let kl = softmax(teacher, 1)
        .mul(teacher_log - student)
        .sum()
        .div_scalar(positions as f64);
    ce.mul_scalar(1.0 - weight)
        .add(kl.mul_scalar(weight * temperature * temperature))
}

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

/// Trains `model` on `corpus.train` for `config.steps` steps, on the cross-entropy alone or,
/// with a `teacher`, on [`distillation_loss`] against it.
pub fn train<B>(
    mut model: Gpt<B>,
    corpus: &Corpus,
    config: &TrainingConfig,
    teacher: Option<&Teacher<B::InnerBackend>>,
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
        let loss = match teacher {
            None => model.loss(batch.inputs, batch.targets),
            Some(teacher) => {
                let taught =
                    Tensor::from_inner(teacher.model.forward(batch.inputs.clone().inner()));
                distillation_loss(
                    model.forward(batch.inputs),
                    taught,
                    batch.targets,
                    &teacher.distillation,
                )
            }
        };
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

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::Distribution;

    use super::*;

    type B = NdArray<f32>;

    fn scalar(t: Tensor<B, 1>) -> f64 {
        t.into_scalar().elem()
    }

    fn case() -> (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 2, Int>) {
        let device = Default::default();
        B::seed(&device, 3);
        let student = Tensor::random([2, 5, 7], Distribution::Normal(0.0, 2.0), &device);
        let teacher = Tensor::random([2, 5, 7], Distribution::Normal(0.0, 2.0), &device);
        let targets = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![0i64, 1, 2, 3, 4, 5, 6, 0, 1, 2], [2, 5]),
            &device,
        );
        (student, teacher, targets)
    }

    #[test]
    fn with_weight_zero_the_loss_is_the_cross_entropy() {
        let (student, teacher, targets) = case();
        let ce = scalar(cross_entropy(student.clone(), targets.clone()));
        let loss = scalar(distillation_loss(
            student,
            teacher,
            targets,
            &Distillation::new(2.0, 0.0).unwrap(),
        ));
        assert!(
            (loss - ce).abs() < 1e-6,
            "loss {loss} vs cross-entropy {ce}"
        );
    }

    #[test]
    fn the_kl_term_is_zero_when_student_and_teacher_agree_and_positive_otherwise() {
        let (student, teacher, targets) = case();
        let all_kl = Distillation::new(3.0, 1.0).unwrap();
        let same = scalar(distillation_loss(
            student.clone(),
            student.clone(),
            targets.clone(),
            &all_kl,
        ));
        assert!(same.abs() < 1e-5, "KL of a model with itself: {same}");
        let differ = scalar(distillation_loss(student, teacher, targets, &all_kl));
        assert!(differ > 1e-3, "KL of two different models: {differ}");
    }

    #[test]
    fn half_and_half_mixes_the_two_terms() {
        let (student, teacher, targets) = case();
        let at = |w| {
            scalar(distillation_loss(
                student.clone(),
                teacher.clone(),
                targets.clone(),
                &Distillation::new(2.0, w).unwrap(),
            ))
        };
        let (ce, kl, half) = (at(0.0), at(1.0), at(0.5));
        assert!(
            (half - 0.5 * (ce + kl)).abs() < 1e-5,
            "{half} vs {ce}, {kl}"
        );
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for (t, w) in [
            (0.0, 0.5),
            (-1.0, 0.5),
            (f64::NAN, 0.5),
            (f64::INFINITY, 0.5),
            (2.0, -0.1),
            (2.0, 1.5),
            (2.0, f64::NAN),
        ] {
            assert!(
                matches!(
                    Distillation::new(t, w),
                    Err(TrainError::Distillation { .. })
                ),
                "temperature {t}, weight {w}"
            );
        }
    }
}
