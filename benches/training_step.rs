//! One training step (forward, backward, optimizer step) of the MNIST classifier
//! 784-256-10: two dense `Linear` layers against two `RbeLinear` layers, on `Autodiff<B>`.
//!
//! ```text
//! cargo bench --bench training_step -- --quick
//! ```
//!
//! The RBE model is the MNIST example's default: both layers RBE, 8x8 blocks, state
//! transitions on, Adam wrapped in `RbeOptimizer`. The dense model uses plain Adam. Inputs
//! are random (timing does not depend on the pixel values). `RBE_BENCH_BATCHES` (64),
//! `RBE_BENCH_BLOCKS` (8), `RBE_BENCH_KERNELS` and the effort variables apply as in
//! `linear_forward`.

use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use rbe::RbeAutodiffBackend;
use rbe::{RbeBackend, RbeKernel, RbeLinear, RbeLinearConfig, RbeOptimizer};

#[allow(dead_code)] // Each bench binary uses a different part of the shared code.
mod common;

use common::backends::{BenchBackend, PerBackend, for_each_selected, sync};
use common::grid::{self, Effort};
use common::results::{Case, Results};
use common::schema::BackendInfo;
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

/// Images `[batch, 784]` and labels `[batch]`.
type Batch<B> = (Tensor<B, 2>, Tensor<B, 1, Int>);

/// What a training step needs from either model.
trait Classifier<B: AutodiffBackend>: AutodiffModule<B> {
    fn logits(&self, images: Tensor<B, 2>) -> Tensor<B, 2>;
}

impl<B: AutodiffBackend> Classifier<B> for DenseMlp<B> {
    fn logits(&self, images: Tensor<B, 2>) -> Tensor<B, 2> {
        self.head
            .forward(self.activation.forward(self.hidden.forward(images)))
    }
}

impl<B: RbeAutodiffBackend> Classifier<B> for RbeMlp<B> {
    fn logits(&self, images: Tensor<B, 2>) -> Tensor<B, 2> {
        self.head
            .forward(self.activation.forward(self.hidden.forward(images)))
    }
}

/// Forward, loss, backward and optimizer step; returns the updated model.
fn train_step<B: AutodiffBackend, M: Classifier<B>>(
    model: M,
    optim: &mut impl Optimizer<M, B>,
    images: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
) -> M {
    let logits = model.logits(images);
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, labels);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optim.step(LEARNING_RATE, model, grads)
}

struct TrainingStep<'a> {
    criterion: &'a mut Criterion,
    effort: Effort,
}

/// Times training steps of `model` (rotating `batches`); `None` when filtered out.
fn time_steps<B: AutodiffBackend, M: Classifier<B>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    effort: &Effort,
    device: &B::Device,
    model: M,
    mut optim: impl Optimizer<M, B>,
    batches: &[Batch<B>],
) -> Option<Stats> {
    let mut model = Some(model);
    measure(
        group,
        id,
        effort,
        || sync::<B>(device),
        |i| {
            let (images, labels) = batches[i % batches.len()].clone();
            let current = model.take().expect("model is put back after every step");
            model = Some(train_step(current, &mut optim, images, labels));
        },
    )
}

impl PerBackend for TrainingStep<'_> {
    fn run<B: BenchBackend>(&mut self, device: B::Device, info: BackendInfo) {
        type Ad<B> = burn::backend::Autodiff<B>;
        let effort = self.effort;
        let mut results = Results::new("training_step", info, &effort);
        let mut group = timing::group(self.criterion, B::NAME, &effort);

        for batch in grid::batches("64") {
            let data: Vec<Batch<Ad<B>>> = (0..effort.inputs)
                .map(|_| {
                    let images = Tensor::random([batch, PIXELS], Distribution::Default, &device);
                    let labels = Tensor::<Ad<B>, 1>::random(
                        [batch],
                        Distribution::Uniform(0.0, CLASSES as f64),
                        &device,
                    )
                    .floor()
                    .int();
                    (images, labels)
                })
                .collect();
            let case = |variant: &str, block| Case {
                variant: variant.into(),
                d_input: PIXELS,
                d_output: CLASSES,
                batch,
                block,
            };

            let dense_case = case("dense", None);
            let dense = DenseMlp::<Ad<B>> {
                hidden: LinearConfig::new(PIXELS, HIDDEN).init(&device),
                head: LinearConfig::new(HIDDEN, CLASSES).init(&device),
                activation: Relu::new(),
            };
            let optim = AdamConfig::new().init();
            let dense_stats = time_steps(
                &mut group,
                &dense_case.key(),
                &effort,
                &device,
                dense,
                optim,
                &data,
            );
            if let Some(stats) = dense_stats {
                results.push(&dense_case, stats, None, None);
            }

            for block in grid::blocks("8") {
                for kernel in grid::kernels() {
                    let rbe_case = case(grid::kernel_variant(kernel), Some(block));
                    let layer =
                        |d_in, d_out| rbe_layer::<Ad<B>>(d_in, d_out, block, kernel, &device);
                    let model = RbeMlp::<Ad<B>> {
                        hidden: layer(PIXELS, HIDDEN),
                        head: layer(HIDDEN, CLASSES),
                        activation: Relu::new(),
                    };
                    let optim = RbeOptimizer::new(AdamConfig::new().init());
                    let stats = time_steps(
                        &mut group,
                        &rbe_case.key(),
                        &effort,
                        &device,
                        model,
                        optim,
                        &data,
                    );
                    if let Some(stats) = stats {
                        results.push(&rbe_case, stats, dense_stats, None);
                    }
                }
            }
        }
        group.finish();
        results.write();
    }
}

fn rbe_layer<B: RbeBackend>(
    d_input: usize,
    d_output: usize,
    block: usize,
    kernel: RbeKernel,
    device: &B::Device,
) -> RbeLinear<B> {
    RbeLinearConfig::new(d_input, d_output)
        .with_block_size(block)
        .with_kernel(kernel)
        .init(device)
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
