//! The small classification task the `Learner` tests train on: four well-separated Gaussian
//! blobs in 32 dimensions and a two-layer classifier whose layers are `RbeLinear`s of any
//! configuration, with burn-train's `TrainStep` and `InferenceStep`.

use burn::data::dataloader::batcher::Batcher;
use burn::nn::Relu;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rbe::{RbeAutodiffBackend, RbeBackend, RbeLinear, RbeLinearConfig};

pub const DIM: usize = 32;
pub const CLASSES: usize = 4;
/// Width of the hidden layer.
pub const HIDDEN: usize = 64;

#[derive(Module, Debug)]
pub struct Classifier<B: Backend> {
    pub hidden: RbeLinear<B>,
    pub head: RbeLinear<B>,
    activation: Relu,
}

impl<B: RbeBackend> Classifier<B> {
    /// `hidden` maps `DIM -> HIDDEN` and `head` `HIDDEN -> CLASSES`: configs of those sizes.
    pub fn new(hidden: &RbeLinearConfig, head: &RbeLinearConfig, device: &B::Device) -> Self {
        Self {
            hidden: hidden.init(device),
            head: head.init(device),
            activation: Relu::new(),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, DIM]`, `targets`: `[batch]`
    pub fn classify(&self, x: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> ClassificationOutput<B> {
        let logits = self
            .head
            .forward(self.activation.forward(self.hidden.forward(x)));
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), targets.clone());
        ClassificationOutput::new(loss, logits, targets)
    }
}

#[derive(Clone, Debug)]
pub struct Item {
    pub x: [f32; DIM],
    pub label: usize,
}

#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    pub x: Tensor<B, 2>,
    pub targets: Tensor<B, 1, Int>,
}

#[derive(Clone, Default)]
pub struct BlobBatcher;

impl<B: Backend> Batcher<B, Item, Batch<B>> for BlobBatcher {
    fn batch(&self, items: Vec<Item>, device: &B::Device) -> Batch<B> {
        let n = items.len();
        let x: Vec<f32> = items.iter().flat_map(|i| i.x).collect();
        let labels: Vec<i64> = items.iter().map(|i| i.label as i64).collect();
        Batch {
            x: Tensor::from_data(TensorData::new(x, [n, DIM]), device),
            targets: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}

impl<B: RbeAutodiffBackend> TrainStep for Classifier<B> {
    type Input = Batch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: Batch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let item = self.classify(batch.x, batch.targets);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl<B: RbeBackend> InferenceStep for Classifier<B> {
    type Input = Batch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: Batch<B>) -> ClassificationOutput<B> {
        self.classify(batch.x, batch.targets)
    }
}

/// `n` points of the four blobs (the same centres for every `seed`), labels in turn.
pub fn blobs(n: usize, seed: u64) -> Vec<Item> {
    let mut rng = StdRng::seed_from_u64(0);
    let centres: Vec<[f32; DIM]> = (0..CLASSES)
        .map(|_| std::array::from_fn(|_| rng.random_range(-1.0..1.0)))
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|k| {
            let label = k % CLASSES;
            Item {
                x: std::array::from_fn(|d| centres[label][d] + rng.random_range(-0.3..0.3)),
                label,
            }
        })
        .collect()
}

/// Every seed of the classifier, hidden layer first.
pub fn all_seeds<B: Backend>(model: &Classifier<B>) -> Vec<rbe::Packed128> {
    [&model.hidden, &model.head]
        .iter()
        .flat_map(|layer| layer.seeds_packed().unwrap())
        .collect()
}
