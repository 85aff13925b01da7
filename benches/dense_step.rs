//! Where a dense training step's time goes: the baseline every "x dense" training figure is
//! measured against, taken apart so that a slow baseline cannot flatter RBE.
//!
//! For the two models of `training_step` (the MNIST MLP 784-256-10 with cross-entropy, and a
//! `width x width` layer with an MSE loss, both batch 64, plain Burn `Linear` and Adam on
//! `Autodiff<B>`), each phase is timed on its own, each phase including the ones before it:
//!
//! - `dense-matmuls`: only the step's matrix products on the inner backend, with the
//!   operand layouts the step uses (forward `x W`, backward `g Wᵀ` and `xᵀ g`);
//! - `dense-forward-inner`: the forward and loss on the inner backend (no autodiff);
//! - `dense-forward`: the same on `Autodiff<B>` (the graph is recorded);
//! - `dense-backward`: forward and `loss.backward()`;
//! - `dense-step`: forward, backward, `GradientsParams::from_grads` and `Adam::step`, as in
//!   `training_step`.
//!
//! Every record carries its multiply-adds (the forward's, times 3 for the phases with a
//! backward) and its compute bound at the rate of a 1024³ dense matmul in the same run.
//!
//! ```text
//! cargo bench --bench dense_step -- --quick
//! ```
//!
//! Variables: `RBE_BENCH_BACKENDS` (`flex`), `RBE_BENCH_WIDE` (4096); effort as in the other
//! benches. Results go to `benches/results/dense_step-<backend>-<machine>.json`; what they
//! say is in docs/dense-training-baseline.md.

use burn::nn::loss::{CrossEntropyLossConfig, MseLoss, Reduction};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

#[allow(dead_code)] // Each bench binary uses a different part of the shared code.
mod common;

use common::backends::{BenchBackend, PerBackend, for_each_selected, sync};
use common::grid::{self, Effort};
use common::matmul_rate::{self, SIDE};
use common::results::{Case, Results};
use common::schema::BackendInfo;
use common::timing::{self, Stats, measure};

type Ad<B> = burn::backend::Autodiff<B>;

const BATCH: usize = 64;
const LEARNING_RATE: f64 = 1e-3;

/// The MLP when `wide` is `None`, else one `wide x wide` layer.
#[derive(Module, Debug)]
struct Model<B: Backend> {
    first: Linear<B>,
    second: Option<Linear<B>>,
    activation: Relu,
}

/// Inputs and what the loss compares with: labels (MLP) or regression targets (wide).
#[derive(Clone)]
enum Target<B: Backend> {
    Labels(Tensor<B, 1, Int>),
    Values(Tensor<B, 2>),
}

impl<B: Backend> Model<B> {
    fn loss(&self, x: Tensor<B, 2>, target: Target<B>) -> Tensor<B, 1> {
        let y = self.first.forward(x);
        match (&self.second, target) {
            (Some(head), Target::Labels(labels)) => {
                let logits = head.forward(self.activation.forward(y));
                CrossEntropyLossConfig::new()
                    .init(&logits.device())
                    .forward(logits, labels)
            }
            (None, Target::Values(values)) => MseLoss::new().forward(y, values, Reduction::Mean),
            _ => unreachable!("the MLP has labels, the wide layer values"),
        }
    }
}

/// One model: its layer shapes (`d_input, d_output`) and a batch of data.
struct Shapes {
    name: &'static str,
    layers: Vec<(usize, usize)>,
}

impl Shapes {
    fn forward_macs(&self) -> f64 {
        self.layers
            .iter()
            .map(|&(i, o)| common::bound::dense_macs(BATCH, i, o))
            .sum()
    }

    fn model<B: Backend>(&self, device: &B::Device) -> Model<B> {
        let layer = |(i, o): (usize, usize)| LinearConfig::new(i, o).init(device);
        Model {
            first: layer(self.layers[0]),
            second: self.layers.get(1).map(|&s| layer(s)),
            activation: Relu::new(),
        }
    }

    fn data<B: Backend>(&self, device: &B::Device) -> (Tensor<B, 2>, Target<B>) {
        let (d_input, _) = self.layers[0];
        let (_, d_output) = *self.layers.last().expect("a layer");
        let x = Tensor::random([BATCH, d_input], Distribution::Default, device);
        let target = match self.layers.len() {
            1 => Target::Values(Tensor::random(
                [BATCH, d_output],
                Distribution::Default,
                device,
            )),
            _ => Target::Labels(Tensor::random(
                [BATCH],
                Distribution::Uniform(0.0, d_output as f64),
                device,
            )),
        };
        (x, target)
    }
}

/// The target moved to the autodiff backend.
fn on_autodiff<B: Backend>(target: &Target<B>) -> Target<Ad<B>> {
    match target {
        Target::Labels(labels) => Target::Labels(Tensor::from_inner(labels.clone())),
        Target::Values(values) => Target::Values(Tensor::from_inner(values.clone())),
    }
}

/// Times the phases of one model's step, recording each against its compute bound.
struct Phases<'r, 'g, 'c, B: BenchBackend> {
    results: &'r mut Results,
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    effort: Effort,
    device: B::Device,
    model: &'static str,
    d_input: usize,
    d_output: usize,
    /// The best dense multiply-adds per second of the run.
    rate: f64,
}

impl<B: BenchBackend> Phases<'_, '_, '_, B> {
    /// Times `call` as the phase `variant` of `macs` multiply-adds and records it.
    fn time<O>(&mut self, variant: &str, macs: f64, call: impl FnMut(usize) -> O) {
        let device = self.device.clone();
        let stats: Option<Stats> = measure(
            self.group,
            &format!("{}/{variant}", self.model),
            &self.effort,
            || sync::<B>(&device),
            call,
        );
        let Some(stats) = stats else { return };
        let case = Case {
            variant: variant.into(),
            d_input: self.d_input,
            d_output: self.d_output,
            batch: BATCH,
            block: None,
        };
        let r = self.results.push(&case, stats, None, None);
        r.model = Some(self.model.into());
        r.macs = Some(macs);
        r.compute_bound = Some(matmul_rate::bound(macs, self.rate, stats.median_ns));
    }
}

struct DenseStep<'a> {
    criterion: &'a mut Criterion,
    effort: Effort,
}

impl PerBackend for DenseStep<'_> {
    fn run<B: BenchBackend>(&mut self, device: B::Device, info: BackendInfo) {
        let effort = self.effort;
        let mut results = Results::new("dense_step", info, &effort);
        let mut group = timing::group(self.criterion, &format!("{}-dense-step", B::NAME), &effort);
        let rate = matmul_rate::best::<B>(&device);
        eprintln!(
            "[{}] dense matmul {SIDE}^3: {:.1} G multiply-adds/s",
            B::NAME,
            rate / 1e9
        );
        let wide = grid::list::<usize>("RBE_BENCH_WIDE", "4096")
            .first()
            .copied()
            .unwrap_or(4096);
        let models = [
            Shapes {
                name: "mlp",
                layers: vec![(784, 256), (256, 10)],
            },
            Shapes {
                name: "wide",
                layers: vec![(wide, wide)],
            },
        ];
        for shapes in &models {
            B::seed(&device, 7);
            let inner: Model<B> = shapes.model(&device);
            let (x, target) = shapes.data::<B>(&device);
            let (x_ad, target_ad) = (
                Tensor::<Ad<B>, 2>::from_inner(x.clone()),
                on_autodiff(&target),
            );
            let mut model: Option<Model<Ad<B>>> = Some(shapes.model(&device));
            let mut optim = AdamConfig::new().init::<Ad<B>, Model<Ad<B>>>();
            let (d_input, d_output) =
                (shapes.layers[0].0, shapes.layers.last().expect("a layer").1);
            let fwd = shapes.forward_macs();
            let mut phases = Phases::<B> {
                results: &mut results,
                group: &mut group,
                effort,
                device: device.clone(),
                model: shapes.name,
                d_input,
                d_output,
                rate,
            };

            // The products of one step with the layouts autodiff gives them.
            let weights: Vec<Tensor<B, 2>> = [Some(&inner.first), inner.second.as_ref()]
                .into_iter()
                .flatten()
                .map(|l| l.weight.val())
                .collect();
            phases.time("dense-matmuls", 3.0 * fwd, |_| {
                let mut outs = Vec::new();
                let mut h = x.clone();
                for w in &weights {
                    let y = h.clone().matmul(w.clone());
                    // The backward's two products: into the input, and into the weight.
                    outs.push(y.clone().matmul(w.clone().transpose()));
                    outs.push(h.transpose().matmul(y.clone()));
                    h = y;
                }
                outs
            });
            phases.time("dense-forward-inner", fwd, |_| {
                inner.loss(x.clone(), target.clone())
            });
            phases.time("dense-forward", fwd, |_| {
                model
                    .as_ref()
                    .expect("a model")
                    .loss(x_ad.clone(), target_ad.clone())
            });
            phases.time("dense-backward", 3.0 * fwd, |_| {
                model
                    .as_ref()
                    .expect("a model")
                    .loss(x_ad.clone(), target_ad.clone())
                    .backward()
            });
            phases.time("dense-step", 3.0 * fwd, |_| {
                let current = model
                    .take()
                    .expect("the model is put back after every step");
                let loss = current.loss(x_ad.clone(), target_ad.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &current);
                model = Some(optim.step(LEARNING_RATE, current, grads));
            });
        }
        group.finish();
        results.write();
    }
}

fn dense_step(criterion: &mut Criterion) {
    let effort = Effort::from_env();
    for_each_selected(&mut DenseStep { criterion, effort });
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = dense_step
}
criterion_main!(benches);
