//! One training step (forward, loss, backward, optimizer step) with RBE layers against the
//! dense equivalent on the same backend in the same run, on `Autodiff<B>`, with the RBE
//! state transitions on and off.
//!
//! ```text
//! cargo bench --bench training_step -- --quick
//! RBE_BENCH_MODELS=mlp RBE_BENCH_TRANSITIONS=off cargo bench --bench training_step -- --quick
//! ```
//!
//! Two models (`RBE_BENCH_MODELS`, default `mlp,wide`):
//!
//! - `mlp`: the MNIST classifier 784-256-10 with ReLU and cross-entropy. RBE: both layers
//!   `RbeLinear`, as in the MNIST example. `RBE_BENCH_BATCHES` (64) and `RBE_BENCH_BLOCKS`
//!   (8) apply.
//! - `wide`: one `width x width` layer and a mean-squared-error loss against a random
//!   target, where RBE's smaller arithmetic can show. `RBE_BENCH_WIDE` (the width, 4096),
//!   `RBE_BENCH_WIDE_BATCHES` (64), `RBE_BENCH_WIDE_BLOCKS` (32).
//!
//! Each paper-format RBE model runs once per entry of `RBE_BENCH_TRANSITIONS` (`on,off`):
//! `PaperFormat::with_transitions`, the backward computing the transition counts
//! or not. Blocks of at most 64 cells also run the sign-blueprint format once per entry of
//! `RBE_BENCH_SIGN` (`ste,flip`; `none` skips): bits trained straight-through (variant
//! `rbe-sign-ste`) or by Bop flips (`rbe-sign-flip`, `RbeOptimizer`'s default Bop settings),
//! and the ternary format trained straight-through (`rbe-ternary-ste`; `RBE_BENCH_TERNARY`,
//! `ste` or `none`).
//! The dense model uses plain Adam; the RBE models Adam wrapped in `RbeOptimizer` (which
//! applies the counts, if any). Inputs are random: timing does not depend on the values.
//! `RBE_BENCH_KERNELS` and the effort variables apply as in `linear_forward`.
//!
//! Every row also carries its compute bound: the step's multiply-adds (three products per
//! layer, forward, `dL/dx` and `dL/dW`, each `batch * d_input * d_output`, or the paper
//! format's closed-form count in their place) at the best rate of a 1024³ dense matmul in
//! the same run, so that a slow dense baseline shows as far from its bound instead of
//! flattering RBE. The optimizer's update is not in the bound.
//!
//! Every case also records its training memory (`Record::training_memory`): what the model,
//! its optimizer state and any training-only state hold after the timed steps, and the
//! extra peak of one more step.
//!
//! Results go to `benches/results/training_step-<backend>-<machine>.json`; the wide model's
//! cases are keyed `<width>x<width>/...`, the MLP's `784x10/...`.

use burn::module::{AutodiffModule, Module};
use burn::nn::loss::{CrossEntropyLossConfig, MseLoss, Reduction};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use rbe::RbeAutodiffBackend;
use rbe::{
    BitTraining, PaperFormat, RbeBackend, RbeKernel, RbeLinear, RbeLinearConfig, RbeOptimizer,
    SignFormat, TernaryFormat,
};

#[allow(dead_code)] // Each bench binary uses a different part of the shared code.
mod common;

use common::backends::{BenchBackend, PerBackend, for_each_selected, sync};
use common::grid::{self, Effort};
use common::results::{Case, Results};
use common::schema::{BackendInfo, ComputeBound, TrainingMemoryRecord};
use common::timing::{self, Stats, measure};

const PIXELS: usize = 784;
const HIDDEN: usize = 256;
const CLASSES: usize = 10;
const LEARNING_RATE: f64 = 1e-3;

#[derive(Module, Debug)]
struct DenseMlp<B: Backend> {
    hidden: Linear<B>,
    head: Linear<B>,
    activation: Relu,
}

#[derive(Module, Debug)]
struct RbeMlp<B: Backend> {
    hidden: RbeLinear<B>,
    head: RbeLinear<B>,
    activation: Relu,
}

#[derive(Module, Debug)]
struct DenseWide<B: Backend> {
    layer: Linear<B>,
}

#[derive(Module, Debug)]
struct RbeWide<B: Backend> {
    layer: RbeLinear<B>,
}

/// Images and labels (MLP).
type Labelled<B> = (Tensor<B, 2>, Tensor<B, 1, Int>);
/// Inputs and regression targets (wide layer).
type Regression<B> = (Tensor<B, 2>, Tensor<B, 2>);

/// What a training step needs from a model: its loss on one batch.
trait Trainable<B: AutodiffBackend>: AutodiffModule<B> {
    /// Labels (MLP) or regression targets (wide layer).
    type Target: Clone;

    fn loss(&self, inputs: Tensor<B, 2>, target: Self::Target) -> Tensor<B, 1>;
}

fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, labels)
}

impl<B: AutodiffBackend> Trainable<B> for DenseMlp<B> {
    type Target = Tensor<B, 1, Int>;

    fn loss(&self, images: Tensor<B, 2>, labels: Self::Target) -> Tensor<B, 1> {
        let logits = self
            .head
            .forward(self.activation.forward(self.hidden.forward(images)));
        cross_entropy(logits, labels)
    }
}

impl<B: RbeAutodiffBackend> Trainable<B> for RbeMlp<B> {
    type Target = Tensor<B, 1, Int>;

    fn loss(&self, images: Tensor<B, 2>, labels: Self::Target) -> Tensor<B, 1> {
        let logits = self
            .head
            .forward(self.activation.forward(self.hidden.forward(images)));
        cross_entropy(logits, labels)
    }
}

impl<B: AutodiffBackend> Trainable<B> for DenseWide<B> {
    type Target = Tensor<B, 2>;

    fn loss(&self, inputs: Tensor<B, 2>, target: Self::Target) -> Tensor<B, 1> {
        MseLoss::new().forward(self.layer.forward(inputs), target, Reduction::Mean)
    }
}

impl<B: RbeAutodiffBackend> Trainable<B> for RbeWide<B> {
    type Target = Tensor<B, 2>;

    fn loss(&self, inputs: Tensor<B, 2>, target: Self::Target) -> Tensor<B, 1> {
        MseLoss::new().forward(self.layer.forward(inputs), target, Reduction::Mean)
    }
}

/// Loss, backward and optimizer step; returns the updated model.
fn train_step<B: AutodiffBackend, M: Trainable<B>>(
    model: M,
    optim: &mut impl Optimizer<M, B>,
    inputs: Tensor<B, 2>,
    target: M::Target,
) -> M {
    let loss = model.loss(inputs, target);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optim.step(LEARNING_RATE, model, grads)
}

/// Times training steps of the model `build` makes (rotating `data`), then measures its
/// training memory; `None` when filtered out.
fn time_steps<B: BenchBackend, M: Trainable<Ad<B>>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    effort: &Effort,
    device: &B::Device,
    build: impl FnOnce() -> M,
    mut optim: impl Optimizer<M, Ad<B>>,
    data: &[(Tensor<Ad<B>, 2>, M::Target)],
) -> Option<(Stats, TrainingMemoryRecord)> {
    let before = B::bytes_in_use(device);
    let mut model = Some(build());
    let stats = measure(
        group,
        id,
        effort,
        || sync::<B>(device),
        |i| {
            let (inputs, target) = data[i % data.len()].clone();
            let current = model.take().expect("model is put back after every step");
            model = Some(train_step(current, &mut optim, inputs, target));
        },
    )?;
    // The timed steps have created every piece of optimizer state, so what is held now is
    // what training this model keeps between steps.
    sync::<B>(device);
    let resident_bytes = B::bytes_in_use(device).saturating_sub(before);
    let (inputs, target) = data[0].clone();
    let current = model.take().expect("model is put back after every step");
    let (_, step_peak_bytes) = B::peak_during(device, || {
        let next = train_step(current, &mut optim, inputs, target);
        sync::<B>(device);
        next
    });
    Some((
        stats,
        TrainingMemoryRecord {
            resident_bytes,
            step_peak_bytes,
        },
    ))
}

/// How the RBE layers of a variant store and train their weights.
#[derive(Debug, Clone, Copy)]
enum Scheme {
    /// The paper's seed format, run by `kernel`, with or without state transitions.
    Paper {
        kernel: RbeKernel,
        transitions: bool,
    },
    /// The sign-blueprint format, its bits trained as given.
    Sign(BitTraining),
    /// The ternary format, its levels trained straight-through.
    Ternary,
}

/// Multiply-adds of one dense training step over `layers` (`(d_input, d_output)` each):
/// three products per layer, forward, `dL/dx` and `dL/dW`.
fn dense_step_macs(layers: &[(usize, usize)], batch: usize) -> f64 {
    layers
        .iter()
        .map(|&(d_in, d_out)| 3.0 * common::bound::dense_macs(batch, d_in, d_out))
        .sum()
}

/// One RBE configuration of a model.
#[derive(Debug, Clone, Copy)]
struct RbeVariant {
    block: usize,
    scheme: Scheme,
}

impl RbeVariant {
    /// `rbe-closed-form-transitions-on`, ..., `rbe-sign-ste`, `rbe-sign-flip`.
    fn name(&self) -> String {
        match self.scheme {
            Scheme::Paper {
                kernel,
                transitions,
            } => format!(
                "{}-transitions-{}",
                grid::kernel_variant(kernel),
                if transitions { "on" } else { "off" }
            ),
            Scheme::Sign(BitTraining::StraightThrough) => "rbe-sign-ste".into(),
            Scheme::Sign(BitTraining::Flip) => "rbe-sign-flip".into(),
            Scheme::Sign(BitTraining::Frozen) => "rbe-sign-frozen".into(),
            Scheme::Ternary => "rbe-ternary-ste".into(),
        }
    }

    /// Whether the backward produces the paper's transition counts; `None` for the sign
    /// format, whose bits move by their own rule.
    fn transitions(&self) -> Option<bool> {
        match self.scheme {
            Scheme::Paper { transitions, .. } => Some(transitions),
            Scheme::Sign(_) | Scheme::Ternary => None,
        }
    }

    /// Multiply-adds of one training step over `layers` (`(d_input, d_output)` each): three
    /// products per layer, the paper format's closed form in place of the dense product.
    fn step_macs(&self, layers: &[(usize, usize)], batch: usize) -> f64 {
        layers
            .iter()
            .map(|&(d_in, d_out)| match self.scheme {
                Scheme::Paper { .. } => {
                    let layout = rbe::BlockLayout::square(d_out, d_in, self.block)
                        .expect("the bench's blocks fit its layers");
                    3.0 * common::bound::rbe_macs(&layout, batch)
                }
                Scheme::Sign(_) | Scheme::Ternary => dense_step_macs(&[(d_in, d_out)], batch),
            })
            .sum()
    }

    fn layer<B: RbeBackend>(&self, d_in: usize, d_out: usize, device: &B::Device) -> RbeLinear<B> {
        let config = RbeLinearConfig::new(d_in, d_out).with_block_size(self.block);
        match self.scheme {
            Scheme::Paper {
                kernel,
                transitions,
            } => config.with_format(
                PaperFormat::new()
                    .with_kernel(kernel)
                    .with_transitions_enabled(transitions)
                    .into(),
            ),
            Scheme::Sign(training) => config.with_format(SignFormat::new(training).into()),
            Scheme::Ternary => {
                config.with_format(TernaryFormat::new(BitTraining::StraightThrough).into())
            }
        }
        .init(device)
    }
}

/// `ste` / `flip` entries of `RBE_BENCH_SIGN` (`none` selects neither).
struct SignTraining(Option<BitTraining>);

impl std::str::FromStr for SignTraining {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ste" => Ok(Self(Some(BitTraining::StraightThrough))),
            "flip" => Ok(Self(Some(BitTraining::Flip))),
            "none" => Ok(Self(None)),
            other => Err(format!("`{other}` is none of `ste`, `flip`, `none`")),
        }
    }
}

/// `on` / `off` entries of `RBE_BENCH_TRANSITIONS`.
struct Switch(bool);

impl std::str::FromStr for Switch {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on" => Ok(Self(true)),
            "off" => Ok(Self(false)),
            other => Err(format!("`{other}` is neither `on` nor `off`")),
        }
    }
}

/// Every RBE variant of the grid with `blocks`.
fn variants(blocks: &[usize]) -> Vec<RbeVariant> {
    let transitions: Vec<bool> = grid::list::<Switch>("RBE_BENCH_TRANSITIONS", "on,off")
        .into_iter()
        .map(|s| s.0)
        .collect();
    let kernels = grid::kernels();
    let sign: Vec<BitTraining> = grid::list::<SignTraining>("RBE_BENCH_SIGN", "ste,flip")
        .into_iter()
        .filter_map(|s| s.0)
        .collect();
    let ternary = grid::list::<String>("RBE_BENCH_TERNARY", "ste");
    let ternary = match ternary.first().map(String::as_str) {
        None | Some("none") => false,
        Some("ste") => true,
        Some(other) => panic!("RBE_BENCH_TERNARY: `{other}` is neither `ste` nor `none`"),
    };
    let mut out = Vec::new();
    for &block in blocks {
        for &kernel in &kernels {
            for &transitions in &transitions {
                out.push(RbeVariant {
                    block,
                    scheme: Scheme::Paper {
                        kernel,
                        transitions,
                    },
                });
            }
        }
        // The sign blueprint holds one bit per cell: blocks of at most 64 cells.
        if block * block <= 64 {
            out.extend(sign.iter().map(|&training| RbeVariant {
                block,
                scheme: Scheme::Sign(training),
            }));
            if ternary {
                out.push(RbeVariant {
                    block,
                    scheme: Scheme::Ternary,
                });
            }
        }
    }
    out
}

struct TrainingStep<'a> {
    criterion: &'a mut Criterion,
    effort: Effort,
}

type Ad<B> = burn::backend::Autodiff<B>;

/// What one model's section of the run shares.
struct Section<'r, 'g, 'c, B: BenchBackend> {
    results: &'r mut Results,
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    effort: Effort,
    device: B::Device,
    model: String,
    /// `(d_input, d_output)` of each layer, for the multiply-add count.
    layers: Vec<(usize, usize)>,
    d_input: usize,
    d_output: usize,
    batch: usize,
    /// The best multiply-adds per second of a dense matmul in this run.
    rate: f64,
}

impl<B: BenchBackend> Section<'_, '_, '_, B> {
    /// The compute bound of a step of `macs` multiply-adds that took `stats`.
    fn bound(&self, macs: f64, stats: &Stats) -> ComputeBound {
        common::matmul_rate::bound(macs, self.rate, stats.median_ns)
    }

    fn case(&self, variant: &str, block: Option<usize>) -> Case {
        Case {
            variant: variant.into(),
            d_input: self.d_input,
            d_output: self.d_output,
            batch: self.batch,
            block,
        }
    }

    /// Times the dense model `build` makes and records it.
    fn dense<M: Trainable<Ad<B>>>(
        &mut self,
        build: impl FnOnce() -> M,
        optim: impl Optimizer<M, Ad<B>>,
        data: &[(Tensor<Ad<B>, 2>, M::Target)],
    ) -> Option<Stats> {
        let case = self.case("dense", None);
        let (stats, memory) = time_steps::<B, M>(
            self.group,
            &case.key(),
            &self.effort,
            &self.device,
            build,
            optim,
            data,
        )?;
        let macs = dense_step_macs(&self.layers, self.batch);
        let bound = self.bound(macs, &stats);
        let record = self.results.push(&case, stats, None, None);
        record.model = Some(self.model.clone());
        record.training_memory = Some(memory);
        record.macs = Some(macs);
        record.compute_bound = Some(bound);
        Some(stats)
    }

    /// Times the RBE model `build` makes for `variant` and records it against `dense`.
    fn rbe<M: Trainable<Ad<B>>>(
        &mut self,
        variant: RbeVariant,
        build: impl FnOnce() -> M,
        data: &[(Tensor<Ad<B>, 2>, M::Target)],
        dense: Option<Stats>,
    ) {
        let case = self.case(&variant.name(), Some(variant.block));
        let optim = RbeOptimizer::new(AdamConfig::new().init());
        let measured = time_steps::<B, M>(
            self.group,
            &case.key(),
            &self.effort,
            &self.device,
            build,
            optim,
            data,
        );
        if let Some((stats, memory)) = measured {
            let macs = variant.step_macs(&self.layers, self.batch);
            let bound = self.bound(macs, &stats);
            let record = self.results.push(&case, stats, dense, None);
            record.macs = Some(macs);
            record.compute_bound = Some(bound);
            record.model = Some(self.model.clone());
            record.transitions = variant.transitions();
            record.training_memory = Some(memory);
        }
    }
}

fn mlp<B: BenchBackend>(
    effort: Effort,
    rate: f64,
    results: &mut Results,
    group: &mut BenchmarkGroup<'_, WallTime>,
    device: &B::Device,
) {
    let variants = variants(&grid::blocks("8"));
    for batch in grid::batches("64") {
        let data: Vec<Labelled<Ad<B>>> = (0..effort.inputs)
            .map(|_| {
                let images = Tensor::random([batch, PIXELS], Distribution::Default, device);
                let labels = Tensor::<Ad<B>, 1>::random(
                    [batch],
                    Distribution::Uniform(0.0, CLASSES as f64),
                    device,
                )
                .floor()
                .int();
                (images, labels)
            })
            .collect();
        let mut section = Section::<B> {
            results: &mut *results,
            group: &mut *group,
            effort,
            device: device.clone(),
            model: format!("mlp-{PIXELS}-{HIDDEN}-{CLASSES}"),
            layers: vec![(PIXELS, HIDDEN), (HIDDEN, CLASSES)],
            d_input: PIXELS,
            d_output: CLASSES,
            batch,
            rate,
        };
        let dense = || DenseMlp::<Ad<B>> {
            hidden: LinearConfig::new(PIXELS, HIDDEN).init(device),
            head: LinearConfig::new(HIDDEN, CLASSES).init(device),
            activation: Relu::new(),
        };
        let dense_stats = section.dense(dense, AdamConfig::new().init(), &data);
        for &variant in &variants {
            let model = || RbeMlp::<Ad<B>> {
                hidden: variant.layer(PIXELS, HIDDEN, device),
                head: variant.layer(HIDDEN, CLASSES, device),
                activation: Relu::new(),
            };
            section.rbe(variant, model, &data, dense_stats);
        }
    }
}

fn wide<B: BenchBackend>(
    effort: Effort,
    rate: f64,
    results: &mut Results,
    group: &mut BenchmarkGroup<'_, WallTime>,
    device: &B::Device,
) {
    // One debug-build call of a 4096-wide dense step is slow: tests use a small width.
    let default_width = if grid::test_mode() { "256" } else { "4096" };
    let Some(&width) = grid::list::<usize>("RBE_BENCH_WIDE", default_width).first() else {
        return;
    };
    if width == 0 {
        return;
    }
    let variants = variants(&grid::list::<usize>("RBE_BENCH_WIDE_BLOCKS", "32"));
    for batch in grid::list::<usize>("RBE_BENCH_WIDE_BATCHES", "64") {
        let data: Vec<Regression<Ad<B>>> = (0..effort.inputs)
            .map(|_| {
                let dist = Distribution::Normal(0.0, 1.0);
                (
                    Tensor::random([batch, width], dist, device),
                    Tensor::random([batch, width], dist, device),
                )
            })
            .collect();
        let mut section = Section::<B> {
            results: &mut *results,
            group: &mut *group,
            effort,
            device: device.clone(),
            model: format!("wide-{width}"),
            layers: vec![(width, width)],
            d_input: width,
            d_output: width,
            batch,
            rate,
        };
        let dense = || DenseWide::<Ad<B>> {
            layer: LinearConfig::new(width, width).init(device),
        };
        let dense_stats = section.dense(dense, AdamConfig::new().init(), &data);
        for &variant in &variants {
            let model = || RbeWide::<Ad<B>> {
                layer: variant.layer(width, width, device),
            };
            section.rbe(variant, model, &data, dense_stats);
        }
    }
}

impl PerBackend for TrainingStep<'_> {
    fn run<B: BenchBackend>(&mut self, device: B::Device, info: BackendInfo) {
        let effort = self.effort;
        let mut results = Results::new("training_step", info, &effort);
        let mut group = timing::group(self.criterion, B::NAME, &effort);
        let rate = common::matmul_rate::best::<B>(&device);
        for model in grid::list::<String>("RBE_BENCH_MODELS", "mlp,wide") {
            match model.as_str() {
                "mlp" => mlp::<B>(effort, rate, &mut results, &mut group, &device),
                "wide" => wide::<B>(effort, rate, &mut results, &mut group, &device),
                other => panic!("RBE_BENCH_MODELS: unknown model `{other}` (mlp, wide)"),
            }
        }
        group.finish();
        results.write();
    }
}

fn training_step(criterion: &mut Criterion) {
    let effort = Effort::from_env();
    for_each_selected(&mut TrainingStep { criterion, effort });
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = training_step
}
criterion_main!(benches);
