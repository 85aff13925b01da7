//! The classifiers of `hyperbolic_classifier`: Euclidean MLPs and Poincaré-ball networks of
//! the same widths, with dense or RBE matrices, trained on a [`Taxonomy`].
//!
//! - Euclidean: `Linear -> ReLU -> Linear -> ReLU -> Linear` (hidden layers dense or
//!   [`RbeLinear`](rbe_burn::RbeLinear), the head dense).
//! - Hyperbolic: the features, read as a tangent vector at the origin, are mapped into the
//!   ball (`expmap0`), then `HypLinear -> Möbius ReLU -> HypLinear -> Möbius ReLU ->
//!   HypMlr`. The Möbius ReLU of Ganea et al. (2018) is `expmap0(relu(logmap0(x)))`; every
//!   layer has its own curvature (fixed, or learned from `c = 1`), and the ReLU moves a point
//!   from one layer's ball to the next one's through the tangent space at the origin, so the
//!   curvatures need not agree.
//!
//! Both kinds are trained with Adam (wrapped in `RbeOptimizer`, which applies the RBE
//! layers' state transitions) on the cross-entropy of the logits.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rbe_burn::hyperbolic::{
    CurvatureConfig, HypLinear, HypLinearConfig, HypMlr, HypMlrConfig, HyperbolicModel, LinearMap,
    poincare,
};
use rbe_burn::{RbeAutodiffBackend, RbeBackend, RbeLinear, RbeLinearConfig, RbeOptimizer};

use super::HypError;
use super::taxonomy::{Split, Taxonomy};
use crate::layer::{FLOAT_BYTES, Layer};

/// Which classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Euclidean MLP, dense hidden layers.
    EuclideanDense,
    /// Euclidean MLP, RBE hidden layers.
    EuclideanRbe,
    /// Poincaré network, dense matrices; `learned` trains the curvatures.
    HyperbolicDense {
        /// Whether the curvatures are trained.
        learned: bool,
    },
    /// Poincaré network, RBE matrices; `learned` trains the curvatures.
    HyperbolicRbe {
        /// Whether the curvatures are trained.
        learned: bool,
    },
}

impl ModelKind {
    /// Every model the example compares, in table order.
    pub const ALL: [Self; 6] = [
        Self::EuclideanDense,
        Self::EuclideanRbe,
        Self::HyperbolicDense { learned: false },
        Self::HyperbolicDense { learned: true },
        Self::HyperbolicRbe { learned: false },
        Self::HyperbolicRbe { learned: true },
    ];

    /// The name the table shows.
    pub fn name(self) -> &'static str {
        match self {
            Self::EuclideanDense => "Euclidean MLP, dense",
            Self::EuclideanRbe => "Euclidean MLP, RbeLinear",
            Self::HyperbolicDense { learned: false } => "Poincaré, dense, fixed c",
            Self::HyperbolicDense { learned: true } => "Poincaré, dense, learned c",
            Self::HyperbolicRbe { learned: false } => "Poincaré, RbeLinear, fixed c",
            Self::HyperbolicRbe { learned: true } => "Poincaré, RbeLinear, learned c",
        }
    }

    /// Whether the hidden matrices are `RbeLinear`.
    pub fn uses_rbe(self) -> bool {
        matches!(self, Self::EuclideanRbe | Self::HyperbolicRbe { .. })
    }

    /// Whether the model trains its curvatures.
    pub fn learns_curvature(self) -> bool {
        matches!(
            self,
            Self::HyperbolicDense { learned: true } | Self::HyperbolicRbe { learned: true }
        )
    }
}

/// The widths shared by every model.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierConfig {
    /// Input features.
    pub d_input: usize,
    /// Width of both hidden layers.
    pub hidden: usize,
    /// Classes.
    pub classes: usize,
    /// Side of the RBE blocks.
    pub block_size: usize,
    /// The curvature every hyperbolic layer starts at (and keeps, when fixed).
    pub curvature: f64,
}

/// A Euclidean MLP with two hidden layers.
#[derive(Module, Debug)]
pub struct EuclideanMlp<B: Backend> {
    /// The hidden layers.
    pub hidden: Vec<Layer<B>>,
    /// The output layer, always dense.
    pub head: Linear<B>,
}

/// A Poincaré-ball network with two hidden layers, whose matrices are `M`, and a hyperbolic
/// MLR head.
#[derive(Module, Debug)]
pub struct HyperbolicNet<B: Backend, M> {
    /// The hidden layers.
    pub hidden: Vec<HypLinear<B, M>>,
    /// The output layer.
    pub head: HypMlr<B>,
}

/// Any of the classifiers.
// Each model is built once; the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Classifier<B: Backend> {
    /// Euclidean.
    Euclidean(EuclideanMlp<B>),
    /// Hyperbolic, dense matrices.
    HyperbolicDense(HyperbolicNet<B, Linear<B>>),
    /// Hyperbolic, RBE matrices.
    HyperbolicRbe(HyperbolicNet<B, RbeLinear<B>>),
}

// RBE matrices in a `HypLinear` need an `RbeBackend`; so does `forward` for every model.
impl<B: RbeBackend> Classifier<B> {
    /// Builds `kind` with the widths of `config`.
    pub fn new(
        kind: ModelKind,
        config: &ClassifierConfig,
        device: &B::Device,
    ) -> Result<Self, HypError> {
        let widths = [config.d_input, config.hidden, config.hidden];
        let err = |e: &dyn std::fmt::Display| HypError::Config(e.to_string());
        // `RbeLinearConfig::init` panics on an invalid configuration: a zero block size, the
        // likeliest slip on a command line, is an error here instead.
        if kind.uses_rbe() && config.block_size == 0 {
            return Err(HypError::Config("block_size must be positive".into()));
        }
        let rbe = |d_in: usize, d_out: usize, bias: bool| {
            RbeLinearConfig::new(d_in, d_out)
                .with_block_size(config.block_size)
                .with_bias(bias)
                .init(device)
        };
        Ok(match kind {
            ModelKind::EuclideanDense | ModelKind::EuclideanRbe => {
                let hidden = widths
                    .windows(2)
                    .map(|w| {
                        Ok(if kind == ModelKind::EuclideanRbe {
                            Layer::Rbe(rbe(w[0], w[1], true))
                        } else {
                            Layer::Dense(LinearConfig::new(w[0], w[1]).init(device))
                        })
                    })
                    .collect::<Result<_, HypError>>()?;
                Self::Euclidean(EuclideanMlp {
                    hidden,
                    head: LinearConfig::new(config.hidden, config.classes).init(device),
                })
            }
            ModelKind::HyperbolicDense { learned } | ModelKind::HyperbolicRbe { learned } => {
                let curvature = if learned {
                    CurvatureConfig::Learned {
                        init: config.curvature,
                    }
                } else {
                    CurvatureConfig::Fixed(config.curvature)
                };
                let layer = |d_in: usize, d_out: usize| {
                    HypLinearConfig::new(d_in, d_out)
                        .with_model(HyperbolicModel::Poincare)
                        .with_curvature(curvature.clone())
                };
                // Built after the hidden layers, which keeps the order of the random draws.
                let head = || {
                    HypMlrConfig::new(config.hidden, config.classes)
                        .with_curvature(curvature.clone())
                        .try_init(device)
                        .map_err(|e| err(&e))
                };
                let pairs = || widths.windows(2).map(|w| (w[0], w[1]));
                if kind.uses_rbe() {
                    let hidden = pairs()
                        .map(|(d_in, d_out)| {
                            // No bias in the matrix: the layer's bias is a Möbius bias.
                            layer(d_in, d_out)
                                .try_init_with(rbe(d_in, d_out, false), device)
                                .map_err(|e| err(&e))
                        })
                        .collect::<Result<_, HypError>>()?;
                    Self::HyperbolicRbe(HyperbolicNet {
                        hidden,
                        head: head()?,
                    })
                } else {
                    let hidden = pairs()
                        .map(|(d_in, d_out)| {
                            layer(d_in, d_out).try_init(device).map_err(|e| err(&e))
                        })
                        .collect::<Result<_, HypError>>()?;
                    Self::HyperbolicDense(HyperbolicNet {
                        hidden,
                        head: head()?,
                    })
                }
            }
        })
    }

    /// The logits.
    ///
    /// # Shapes
    /// - `x`: `[n, d_input]`
    /// - returns `[n, classes]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Self::Euclidean(m) => {
                let h = m.hidden.iter().fold(x, |h, layer| relu(layer.forward(h)));
                m.head.forward(h)
            }
            Self::HyperbolicDense(m) => m.forward(x),
            Self::HyperbolicRbe(m) => m.forward(x),
        }
    }
}

impl<B: Backend> Classifier<B> {
    /// Stored bytes of every parameter: 4 per float, an RBE matrix as its storage report
    /// says (16 bytes per seed), a learned curvature as one float.
    pub fn param_bytes(&self) -> usize {
        match self {
            Self::Euclidean(m) => {
                let hidden: usize = m.hidden.iter().map(|l| l.bytes().total()).sum();
                hidden + FLOAT_BYTES * m.head.num_params()
            }
            Self::HyperbolicDense(m) => m.param_bytes(|linear| FLOAT_BYTES * linear.num_params()),
            Self::HyperbolicRbe(m) => m.param_bytes(|rbe| rbe.storage().total_bytes),
        }
    }

    /// The curvature of every hyperbolic layer, head last; empty for Euclidean models.
    pub fn curvatures(&self) -> Vec<f64> {
        match self {
            Self::Euclidean(_) => Vec::new(),
            Self::HyperbolicDense(m) => m.curvatures(),
            Self::HyperbolicRbe(m) => m.curvatures(),
        }
    }
}

impl<B: Backend, M> HyperbolicNet<B, M> {
    /// Stored bytes of every parameter, `matrix_bytes` of each hidden matrix.
    fn param_bytes(&self, matrix_bytes: impl Fn(&M) -> usize) -> usize {
        let hidden: usize = self
            .hidden
            .iter()
            .map(|l| {
                let rest = l.bias.as_ref().map_or(0, |b| b.num_params()) + l.curvature.num_params();
                matrix_bytes(&l.matrix) + FLOAT_BYTES * rest
            })
            .sum();
        hidden + FLOAT_BYTES * self.head.num_params()
    }

    /// The curvature of every layer, head last.
    fn curvatures(&self) -> Vec<f64> {
        self.hidden
            .iter()
            .map(HypLinear::curvature)
            .chain([self.head.curvature.value_f64()])
            .collect()
    }
}

impl<B: Backend, M: LinearMap<B>> HyperbolicNet<B, M> {
    /// The logits: the features mapped into the first layer's ball, the hidden layers with
    /// Möbius ReLUs between them, the head.
    ///
    /// # Shapes
    /// - `x`: `[n, d_input]`
    /// - returns `[n, classes]`
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let c0 = self.hidden[0].curvature.value();
        let mut h = poincare::expmap0(x, c0);
        let mut c_prev = None;
        for layer in &self.hidden {
            let c = layer.curvature.value();
            if let Some(prev) = c_prev {
                h = mobius_relu(h, prev, c.clone());
            }
            h = layer.forward(h);
            c_prev = Some(c);
        }
        let c = self.head.curvature.value();
        let prev = c_prev.expect("at least one hidden layer");
        self.head.forward(mobius_relu(h, prev, c))
    }
}

/// `expmap0_{c_to}(relu(logmap0_{c_from}(x)))`: the Möbius ReLU, from the ball of `c_from`
/// into the ball of `c_to`.
fn mobius_relu<B: Backend>(
    x: Tensor<B, 2>,
    c_from: Tensor<B, 1>,
    c_to: Tensor<B, 1>,
) -> Tensor<B, 2> {
    poincare::expmap0(relu(poincare::logmap0(x, c_from)), c_to)
}

/// How to train a classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training samples.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seeds the sample order.
    pub seed: u64,
}

/// A trained classifier's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Accuracy on the training samples.
    pub train_accuracy: f64,
    /// Accuracy on the test samples.
    pub test_accuracy: f64,
    /// Mean training loss over the last epoch.
    pub final_loss: f64,
    /// Seconds of training.
    pub train_s: f64,
}

fn batch<B: Backend>(
    split: &Split,
    rows: &[usize],
    f: usize,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 1, Int>) {
    let x: Vec<f32> = rows
        .iter()
        .flat_map(|&r| split.x[r * f..(r + 1) * f].iter().copied())
        .collect();
    let y: Vec<i32> = rows.iter().map(|&r| split.labels[r] as i32).collect();
    (
        Tensor::from_data(TensorData::new(x, [rows.len(), f]), device),
        Tensor::from_data(TensorData::new(y, [rows.len()]), device),
    )
}

/// Accuracy of `model` on `split`.
pub fn accuracy<B: RbeBackend>(
    model: &Classifier<B>,
    split: &Split,
    features: usize,
    device: &B::Device,
) -> f64 {
    let rows: Vec<usize> = (0..split.len()).collect();
    let mut correct = 0usize;
    for chunk in rows.chunks(1024) {
        let (x, y) = batch::<B>(split, chunk, features, device);
        let pred = model.forward(x).argmax(1).reshape([chunk.len()]);
        let hits: i64 = pred.equal(y).int().sum().into_scalar().elem();
        correct += hits as usize;
    }
    correct as f64 / split.len() as f64
}

/// Trains `model` on `data.train`; returns it with its scores.
pub fn train<B: RbeAutodiffBackend>(
    mut model: Classifier<B>,
    data: &Taxonomy,
    config: &TrainConfig,
    device: &B::Device,
) -> Result<(Classifier<B>, Scores), HypError> {
    if config.epochs == 0 || config.batch_size == 0 || !(config.lr.is_finite() && config.lr > 0.0) {
        return Err(HypError::Config(format!(
            "need epochs, batch_size > 0 and a positive finite lr, got {config:?}"
        )));
    }
    let mut optimizer = RbeOptimizer::new(AdamConfig::new().init::<B, Classifier<B>>());
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..data.train.len()).collect();
    let start = Instant::now();
    let mut final_loss = f64::NAN;
    for epoch in 1..=config.epochs {
        order.shuffle(&mut rng);
        let (mut total, mut steps) = (0.0, 0usize);
        for rows in order.chunks(config.batch_size) {
            let (x, y) = batch::<B>(&data.train, rows, data.features, device);
            let loss = loss_fn.forward(model.forward(x), y);
            let value: f64 = loss.clone().into_scalar().elem();
            if !value.is_finite() {
                return Err(HypError::Diverged { epoch, loss: value });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.lr, model, grads);
            if let Some(e) = optimizer.take_rejected() {
                return Err(HypError::Config(format!(
                    "optimizer step refused at epoch {epoch}: {e}"
                )));
            }
            total += value;
            steps += 1;
        }
        final_loss = total / steps as f64;
    }
    let train_s = start.elapsed().as_secs_f64();
    let valid = model.valid();
    let inner_device = device.clone();
    let scores = Scores {
        train_accuracy: accuracy(&valid, &data.train, data.features, &inner_device),
        test_accuracy: accuracy(&valid, &data.test, data.features, &inner_device),
        final_loss,
        train_s,
    };
    Ok((model, scores))
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::hyperbolic::taxonomy::TaxonomyConfig;
    use burn::backend::{Autodiff, Flex};

    type B = Autodiff<Flex<f32, i32>>;

    fn data() -> Taxonomy {
        Taxonomy::generate(&TaxonomyConfig {
            branching: 3,
            depth: 2,
            label_depth: 1,
            features: 8,
            noise: 0.2,
            train: 512,
            test: 256,
            ..TaxonomyConfig::default()
        })
        .unwrap()
    }

    fn config() -> ClassifierConfig {
        ClassifierConfig {
            d_input: 8,
            hidden: 16,
            classes: 3,
            block_size: 8,
            curvature: 1.0,
        }
    }

    #[test]
    fn param_bytes_count_every_parameter() {
        let device = Default::default();
        let bytes = |kind| {
            Classifier::<B>::new(kind, &config(), &device)
                .unwrap()
                .param_bytes()
        };
        // Linear 8->16, 16->16, 16->3 with biases.
        let dense = 4 * (8 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3);
        assert_eq!(bytes(ModelKind::EuclideanDense), dense);
        // RBE 8->16 (2 blocks), 16->16 (4 blocks): 16 bytes per seed, plus biases.
        assert_eq!(
            bytes(ModelKind::EuclideanRbe),
            16 * (2 + 4) + 4 * (16 + 16) + 4 * (16 * 3 + 3)
        );
        // No matrix biases; Möbius biases [16] x 2; the MLR has offsets and normals [3, 16].
        let hyp = 4 * (8 * 16 + 16 * 16 + 2 * 16 + 2 * 3 * 16);
        assert_eq!(bytes(ModelKind::HyperbolicDense { learned: false }), hyp);
        // Three learned curvatures, one float each.
        assert_eq!(
            bytes(ModelKind::HyperbolicDense { learned: true }),
            hyp + 4 * 3
        );
        assert_eq!(
            bytes(ModelKind::HyperbolicRbe { learned: true }),
            16 * (2 + 4) + 4 * (2 * 16 + 2 * 3 * 16 + 3)
        );
    }

    #[test]
    fn every_model_learns_an_easy_taxonomy() {
        let device = Default::default();
        let data = data();
        // Six epochs left the RBE models at 54% on one CI run (the initialisation was not
        // seeded); twenty give every model room, and the seed makes a failure reproducible.
        let train = TrainConfig {
            epochs: 20,
            batch_size: 32,
            lr: 1e-2,
            seed: 0,
        };
        for kind in ModelKind::ALL {
            B::seed(&device, 0);
            let model = Classifier::<B>::new(kind, &config(), &device).unwrap();
            let (model, scores) = super::train(model, &data, &train, &device).unwrap();
            // Chance is 1/3 and the three top-level clusters are far apart: the dense models
            // reach 100%. The paper's two-parameter seeds are weak here (seeded, 20 epochs:
            // Euclidean 86%, Poincaré 59% fixed c and 67% learned c; the README's table shows
            // the same gap at full size), so for them the test asks for learning, not a fit.
            let floor = if kind.uses_rbe() { 0.5 } else { 0.95 };
            assert!(scores.test_accuracy > floor, "{kind:?}: {scores:?}");
            let c = model.curvatures();
            match kind {
                ModelKind::EuclideanDense | ModelKind::EuclideanRbe => assert!(c.is_empty()),
                _ if kind.learns_curvature() => {
                    assert_eq!(c.len(), 3);
                    assert!(c.iter().all(|c| c.is_finite() && *c > 0.0), "{c:?}");
                    assert!(
                        c.iter().any(|c| (c - 1.0).abs() > 1e-4),
                        "{kind:?} did not learn c: {c:?}"
                    );
                }
                _ => assert_eq!(c, vec![1.0; 3]),
            }
        }
    }

    #[test]
    fn bad_configs_are_errors() {
        let device = Default::default();
        let model = Classifier::<B>::new(ModelKind::EuclideanDense, &config(), &device).unwrap();
        let bad = TrainConfig {
            epochs: 1,
            batch_size: 0,
            lr: 1e-2,
            seed: 0,
        };
        assert!(super::train(model, &data(), &bad, &device).is_err());
        let zero_blocks = ClassifierConfig {
            block_size: 0,
            ..config()
        };
        for kind in [
            ModelKind::EuclideanRbe,
            ModelKind::HyperbolicRbe { learned: false },
        ] {
            assert!(Classifier::<B>::new(kind, &zero_blocks, &device).is_err());
        }
    }
}
