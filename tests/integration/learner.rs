//! `RbeLinear` inside burn-train's `Learner`, with the optimizer wrapped in `RbeOptimizer`:
//! a two-layer classifier on four Gaussian blobs trains for a few epochs and its loss on a
//! fixed evaluation set goes down, while the state transitions move the CORDIC bits. With a
//! `CompactRecorder` file checkpointer (what Burn's guide uses), the last checkpoint reloads
//! through `load_checked` with the trained seeds bit for bit.

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use burn::prelude::*;
use burn::record::CompactRecorder;
use burn::train::{Learner, SupervisedTraining};
use rbe::{RbeAutodiffBackend, RbeBackend, RbeLinearConfig, RbeOptimizer};

use crate::blobs::{Batch, BlobBatcher, CLASSES, Classifier, DIM, HIDDEN, all_seeds, blobs};

/// The classifier these tests train: paper-format layers, 4x4 and 2x2 blocks.
fn classifier<B: RbeBackend>(device: &B::Device) -> Classifier<B> {
    Classifier::new(
        &RbeLinearConfig::new(DIM, HIDDEN).with_block_size(4),
        &RbeLinearConfig::new(HIDDEN, CLASSES).with_block_size(2),
        device,
    )
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
    let model = classifier::<B>(device);
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
        let fresh = classifier::<B::InnerBackend>(device);
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
