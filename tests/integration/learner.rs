//! `RbeLinear` inside burn-train's `Learner`, with the optimizer wrapped in `RbeOptimizer`:
//! a two-layer classifier on four Gaussian blobs trains for a few epochs and its loss on a
//! fixed evaluation set goes down, while the state transitions move the CORDIC bits. With a
//! `CompactRecorder` file checkpointer (what Burn's guide uses), the last checkpoint reloads
//! through `load_checked` with the trained seeds bit for bit.

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::AutodiffModule;
use burn::nn::Relu;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::record::CompactRecorder;
use burn::train::{
    ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rbe::{RbeAutodiffBackend, RbeBackend, RbeLinear, RbeLinearConfig, RbeOptimizer};

const DIM: usize = 32;
const CLASSES: usize = 4;

#[derive(Module, Debug)]
struct Classifier<B: Backend> {
    hidden: RbeLinear<B>,
    head: RbeLinear<B>,
    activation: Relu,
}

impl<B: RbeBackend> Classifier<B> {
    fn new(device: &B::Device) -> Self {
        Self {
            hidden: RbeLinearConfig::new(DIM, 64)
                .with_block_size(4)
                .init(device),
            head: RbeLinearConfig::new(64, CLASSES)
                .with_block_size(2)
                .init(device),
            activation: Relu::new(),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, DIM]`, `targets`: `[batch]`
    fn classify(&self, x: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> ClassificationOutput<B> {
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
struct Item {
    x: [f32; DIM],
    label: usize,
}

#[derive(Clone, Debug)]
struct Batch<B: Backend> {
    x: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
}

#[derive(Clone, Default)]
struct BlobBatcher;

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

/// Four well-separated Gaussian blobs.
fn blobs(n: usize, seed: u64) -> Vec<Item> {
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

fn all_seeds<B: Backend>(model: &Classifier<B>) -> Vec<rbe::Packed128> {
    [&model.hidden, &model.head]
        .iter()
        .flat_map(|layer| layer.seeds_packed().unwrap())
        .collect()
}

fn eval_loss<B: RbeBackend>(model: &Classifier<B>, device: &B::Device) -> f32 {
    let batch: Batch<B> = BlobBatcher.batch(blobs(256, 99), device);
    model
        .classify(batch.x, batch.targets)
        .loss
        .into_scalar()
        .elem()
}

const EPOCHS: usize = 5;

/// Trains under the `Learner`; with `checkpoints`, through a `CompactRecorder` file
/// checkpointer whose last checkpoint must reload to the trained model.
fn train_with_learner<B>(device: &B::Device, name: &str, checkpoints: bool)
where
    B: RbeAutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    B::seed(device, 3);
    let model = Classifier::<B>::new(device);
    let before_loss = eval_loss(&model.valid(), device);
    let bits_before = all_seeds(&model);

    let train = DataLoaderBuilder::new(BlobBatcher)
        .batch_size(32)
        .shuffle(1)
        .set_device(device.clone())
        .build(InMemDataset::new(blobs(512, 1)));
    let valid = DataLoaderBuilder::<B::InnerBackend, _, _>::new(BlobBatcher)
        .batch_size(64)
        .set_device(device.clone())
        .build(InMemDataset::new(blobs(128, 2)));
    let dir = std::env::temp_dir().join(format!("rbe-learner-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let learner = Learner::new(model, RbeOptimizer::new(AdamConfig::new().init()), 3e-2);
    let mut training = SupervisedTraining::new(&dir, train, valid)
        .num_epochs(EPOCHS)
        .with_application_logger(None);
    if checkpoints {
        training = training.with_file_checkpointer(CompactRecorder::new());
    }
    let trained = training.launch(learner).model;

    let after_loss = eval_loss(&trained, device);
    assert!(
        after_loss < 0.7 * before_loss,
        "loss {before_loss} -> {after_loss}"
    );
    let bits_after = all_seeds(&trained);
    assert!(
        bits_before
            .iter()
            .zip(&bits_after)
            .any(|(a, b)| a.hi != b.hi),
        "state transitions moved no bits"
    );

    if checkpoints {
        let path = dir.join("checkpoint").join(format!("model-{EPOCHS}"));
        let fresh = Classifier::<B::InnerBackend>::new(device);
        let loaded = rbe::load_checked(fresh, &path, &CompactRecorder::new(), device)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert_eq!(
            all_seeds(&loaded),
            bits_after,
            "checkpointed seeds bit for bit"
        );
        // Only the biases went through f16 (relative rounding <= 2^-11): the loss moves by
        // far less than 1%.
        let loaded_loss = eval_loss(&loaded, device);
        assert!(
            (loaded_loss - after_loss).abs() <= 1e-2 * after_loss,
            "checkpoint loss {loaded_loss} vs trained {after_loss}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "ndarray")]
#[test]
fn rbe_model_trains_under_the_learner_on_ndarray() {
    train_with_learner::<burn::backend::Autodiff<burn::backend::NdArray>>(
        &Default::default(),
        "ndarray",
        false,
    );
}

#[cfg(feature = "wgpu")]
#[test]
fn rbe_model_trains_under_the_learner_on_wgpu() {
    if let Some(device) = rbe::testing::wgpu_device() {
        train_with_learner::<burn::backend::Autodiff<burn::backend::Wgpu>>(&device, "wgpu", false);
    }
}

#[cfg(feature = "flex")]
#[test]
fn learner_checkpoints_with_the_compact_recorder_reload_on_flex() {
    train_with_learner::<burn::backend::Autodiff<burn::backend::Flex>>(
        &Default::default(),
        "flex-checkpoints",
        true,
    );
}
