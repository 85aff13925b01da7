//! `DataParallel` (examples-support's data-parallel strategy) and Burn's own multi-device
//! strategy under burn-train's `Learner`, on two logical Flex devices (Flex has one device, listed twice: two replicas, two
//! threads). For every seed format and bit rule, a blob classifier trains for two epochs:
//!
//! - every replica ends with the same parameters bit for bit, seeds included, and the bits
//!   moved where the rule moves them;
//! - the result is that of a reference computed by hand on one device: the same shares of
//!   the same batches, their gradients summed in replica order, one optimizer;
//! - a replica made to diverge after a step is reported by step, replica and parameter, and
//!   training stops there on every replica.
//!
//! Also: gradient accumulation, interrupts and a panicking replica (the others are released,
//! nothing hangs), the constructor's refusals, and two replicas on WGPU.
#![cfg(feature = "flex")]

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::split::split_dataloader;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsAccumulator, Optimizer};
use burn::prelude::*;
use burn::train::{
    ExecutionStrategy, Interrupter, Learner, LearningComponentsMarker, MultiDeviceOptim,
    SupervisedTraining, TrainStep,
};
use rbe::{
    BitTraining, BopConfig, PaperFormat, RbeAutodiffBackend, RbeBackend, RbeLinearConfig,
    RbeOptimizer, SeedFormat, SignFormat, TernaryFormat,
};
use rbe_examples::parallel::{DataParallel, FaultInjection, Fingerprint, ParallelError};
use std::sync::Arc;

use crate::blobs::{Batch, BlobBatcher, CLASSES, Classifier, DIM, HIDDEN, Item, all_seeds, blobs};

type B = Autodiff<Flex>;
type Optim<B> = RbeOptimizer<OptimizerAdaptor<Adam, Classifier<B>, B>>;
type Components = LearningComponentsMarker<B, f64, Classifier<B>, Optim<B>>;
type Loader<B> = Arc<dyn DataLoader<B, Batch<B>>>;

const LR: f64 = 3e-2;
const EPOCHS: usize = 2;
const BATCH: usize = 32;
/// Two shares of 256 and 257 items: 8 and 9 batches of 32, so the replicas must stop at
/// the shorter share's 8 to stay in step.
const TRAIN_ITEMS: usize = 513;
const STEPS_PER_EPOCH: usize = 8;

/// A classifier in `format`: 4x4 blocks (16 cells), within the sign blueprint's and the
/// ternary format's 64.
fn classifier<B: RbeBackend>(format: SeedFormat, device: &B::Device) -> Classifier<B> {
    let config = |d_input, d_output| {
        RbeLinearConfig::new(d_input, d_output)
            .with_block_size(4)
            .with_format(format)
    };
    Classifier::new(&config(DIM, HIDDEN), &config(HIDDEN, CLASSES), device)
}

/// A fresh, shuffling training loader: built the same way twice, it cuts and shuffles its
/// shares the same way.
fn train_loader<B: Backend>(device: &B::Device) -> Loader<B> {
    DataLoaderBuilder::new(BlobBatcher)
        .batch_size(BATCH)
        .shuffle(5)
        .set_device(device.clone())
        .build(InMemDataset::new(blobs(TRAIN_ITEMS, 1)))
}

/// The optimizer of the MNIST example: Adam behind `RbeOptimizer`, with its Bop defaults
/// for sign-blueprint bits that flip.
fn optimizer<B>() -> Optim<B>
where
    B: RbeAutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    RbeOptimizer::new(AdamConfig::new().init())
        .with_bit_flips(BopConfig {
            gamma: 1e-2,
            tau: 1e-6,
        })
        .unwrap()
}

/// The five formats and bit rules.
fn paper(transitions: bool) -> SeedFormat {
    SeedFormat::Paper(PaperFormat::new().with_transitions_enabled(transitions))
}

fn sign(rule: BitTraining) -> SeedFormat {
    SeedFormat::SignBlueprint(SignFormat::new(rule))
}

fn ternary() -> SeedFormat {
    SeedFormat::Ternary(TernaryFormat::new(BitTraining::StraightThrough))
}

/// A classifier in `format` on Flex, drawn once so that every run of a test starts from it.
fn initial(format: SeedFormat) -> Classifier<B> {
    B::seed(&FlexDevice, 3);
    classifier(format, &FlexDevice)
}

/// What a data-parallel run left.
struct Run<B: Backend> {
    replicas: Vec<Classifier<B>>,
    steps: usize,
    result: Result<(), ParallelError>,
}

/// Trains `model` with `DataParallel` on `n` Flex devices under the `Learner`.
fn train_parallel(
    name: &str,
    model: Classifier<B>,
    n: usize,
    fault: Option<FaultInjection>,
    interrupter: Interrupter,
) -> Run<B> {
    train_on(name, model, vec![FlexDevice; n], fault, interrupter, 1)
}

/// Trains `model` with `DataParallel` on `devices` under the `Learner`, one optimizer
/// step every `accumulation` batches per device.
fn train_on<B>(
    name: &str,
    model: Classifier<B>,
    devices: Vec<B::Device>,
    fault: Option<FaultInjection>,
    interrupter: Interrupter,
    accumulation: usize,
) -> Run<B>
where
    B: RbeAutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    let n = devices.len();
    let device = devices[0].clone();
    let mut parallel = DataParallel::new(devices).unwrap();
    if let Some(fault) = fault {
        parallel = parallel.with_fault(fault).unwrap();
    }
    let outcome = parallel.outcome();
    let valid = DataLoaderBuilder::<B::InnerBackend, _, _>::new(BlobBatcher)
        .batch_size(64)
        .set_device(device.clone())
        .build(InMemDataset::new(blobs(128, 2)));
    let dir = std::env::temp_dir().join(format!("rbe-ddp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let learner = Learner::new(model, optimizer(), LR);
    let trained = SupervisedTraining::new(&dir, train_loader(&device), valid)
        .num_epochs(EPOCHS)
        .grads_accumulation(accumulation)
        .with_interrupter(interrupter)
        .with_application_logger(None)
        .with_training_strategy(parallel.into_strategy())
        .launch(learner)
        .model;
    let _ = std::fs::remove_dir_all(&dir);

    let replicas = outcome.replicas();
    assert_eq!(replicas.len(), n, "replicas recorded");
    assert_eq!(
        all_seeds(&trained),
        all_seeds(&replicas[0]),
        "the Learner returns replica 0"
    );
    Run {
        replicas,
        steps: outcome.optimizer_steps(),
        result: outcome.result(),
    }
}

/// How long an epoch of the reference goes on.
#[derive(Clone, Copy, PartialEq)]
enum Until {
    /// Until the shorter share runs out, as `DataParallel`'s replicas stop together.
    Shortest,
    /// Until both run out, the last rounds on the longer share alone, as Burn's
    /// multi-device strategy does.
    Longest,
}

/// The reference on one device: each round takes the next batch of each of the two shares
/// `split_dataloader` cuts (what the replicas train on) and sums their gradients in share
/// order, for as long as `until` says; every `accumulation` rounds of an epoch, the
/// rounds' sums are summed and one optimizer step taken. At most `max_steps` steps.
fn reference(
    model: Classifier<B>,
    max_steps: usize,
    accumulation: usize,
) -> (Classifier<B>, usize) {
    reference_until(model, max_steps, accumulation, Until::Shortest)
}

fn reference_until(
    model: Classifier<B>,
    max_steps: usize,
    accumulation: usize,
    until: Until,
) -> (Classifier<B>, usize) {
    let shares = split_dataloader(train_loader(&FlexDevice), &[FlexDevice, FlexDevice]);
    let mut optim = optimizer();
    let mut model = model;
    let mut steps = 0;
    for _ in 0..EPOCHS {
        let mut batches: Vec<_> = shares.iter().map(|share| share.iter()).collect();
        let mut rounds = GradientsAccumulator::<Classifier<B>>::new();
        let mut pending = 0;
        while steps < max_steps {
            let next: Vec<Option<Batch<B>>> = batches.iter_mut().map(Iterator::next).collect();
            let stop = match until {
                Until::Shortest => next.iter().any(Option::is_none),
                Until::Longest => next.iter().all(Option::is_none),
            };
            if stop {
                break;
            }
            let mut sum = GradientsAccumulator::<Classifier<B>>::new();
            for batch in next.into_iter().flatten() {
                let grads = TrainStep::step(&model, batch).grads;
                sum.accumulate(&model, grads);
            }
            rounds.accumulate(&model, sum.grads());
            pending += 1;
            if pending == accumulation {
                model = optim.step(LR, model, rounds.grads());
                pending = 0;
                steps += 1;
            }
        }
    }
    (model, steps)
}

/// Where the bits moved between `before` and `after`.
fn bits_moved(before: &Classifier<B>, after: &Classifier<B>) -> bool {
    all_seeds(before)
        .iter()
        .zip(all_seeds(after))
        .any(|(a, b)| a.hi != b.hi)
}

/// (a) and (b) for one format: the replicas agree bit for bit with each other and with the
/// hand-computed reference, and the bits moved as the rule says (`bits_move`).
fn replicas_match_the_summed_reference(name: &str, format: SeedFormat, bits_move: bool) {
    let start = initial(format);
    let run = train_parallel(name, start.clone(), 2, None, Interrupter::new());
    run.result.unwrap();
    assert_eq!(run.steps, EPOCHS * STEPS_PER_EPOCH, "steps per replica");

    let [first, second] = &run.replicas[..] else {
        panic!("two replicas, got {}", run.replicas.len());
    };
    assert_eq!(all_seeds(first), all_seeds(second), "replicas' seeds");
    assert_eq!(
        Fingerprint::of(first).first_difference(&Fingerprint::of(second)),
        None,
        "replicas' parameters"
    );
    assert_eq!(
        bits_moved(&start, first),
        bits_move,
        "whether the {name} rule moved bits"
    );
    assert_ne!(
        Fingerprint::of(&start),
        Fingerprint::of(first),
        "training changed nothing"
    );

    // The same gradients summed in the same order, the same optimizer steps on the same
    // backend: the same bits, floats included, so the comparison is exact.
    let (expected, steps) = reference(start, usize::MAX, 1);
    assert_eq!(steps, run.steps, "reference steps");
    assert_eq!(all_seeds(first), all_seeds(&expected), "seeds vs reference");
    assert_eq!(
        Fingerprint::of(first).first_difference(&Fingerprint::of(&expected)),
        None,
        "parameters vs reference"
    );
}

/// (c) for one format: replica 1 diverges after step 3; the divergence is reported, not
/// averaged away, and no replica takes a fourth step.
fn a_diverged_replica_stops_training(name: &str, format: SeedFormat) {
    const STEP: usize = 3;
    let start = initial(format);
    let fault = FaultInjection {
        replica: 1,
        step: STEP,
    };
    let run = train_parallel(name, start.clone(), 2, Some(fault), Interrupter::new());
    match run.result {
        Err(ParallelError::ReplicaMismatch {
            step: STEP,
            replica: 1,
            ref parameter,
        }) => assert!(parameter.starts_with("hidden."), "{parameter}"),
        other => panic!("expected replica 1 to diverge after step {STEP}, got {other:?}"),
    }
    assert_eq!(run.steps, STEP, "training went on after the divergence");
    assert_ne!(
        Fingerprint::of(&run.replicas[0]),
        Fingerprint::of(&run.replicas[1]),
        "the divergence was averaged away"
    );
    // Replica 0 is untouched: it is the reference stopped after the same steps.
    let (expected, _) = reference(start, STEP, 1);
    assert_eq!(
        Fingerprint::of(&run.replicas[0]).first_difference(&Fingerprint::of(&expected)),
        None,
        "replica 0 vs the reference after {STEP} steps"
    );
}

/// Burn's own multi-device strategy (`ExecutionStrategy::multi`, the optimizer on the first
/// device) on two logical Flex devices: one model, its forks' gradients summed on the first
/// device, one optimizer. It must equal the reference that sums the two shares' gradients
/// each round and goes on with the longer share alone at the end of an epoch. Burn adds
/// the gradients in the order the workers finish, which for two is exact either way.
fn burn_multi_device_matches_the_summed_reference(name: &str, format: SeedFormat, bits_move: bool) {
    let start = initial(format);
    let valid = DataLoaderBuilder::<Flex, _, _>::new(BlobBatcher)
        .batch_size(64)
        .set_device(FlexDevice)
        .build(InMemDataset::new(blobs(128, 2)));
    let dir = std::env::temp_dir().join(format!("rbe-multi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let trained = SupervisedTraining::new(&dir, train_loader(&FlexDevice), valid)
        .num_epochs(EPOCHS)
        .with_application_logger(None)
        .with_training_strategy(
            ExecutionStrategy::multi(
                vec![FlexDevice, FlexDevice],
                MultiDeviceOptim::OptimMainDevice,
            )
            .into(),
        )
        .launch(Learner::new(start.clone(), optimizer(), LR))
        .model;
    let _ = std::fs::remove_dir_all(&dir);

    let (expected, steps) = reference_until(start.clone(), usize::MAX, 1, Until::Longest);
    assert_eq!(steps, EPOCHS * (STEPS_PER_EPOCH + 1), "reference steps");
    assert_eq!(
        bits_moved(&start, &expected),
        bits_move,
        "whether the {name} rule moved bits"
    );
    assert_eq!(
        all_seeds(&trained),
        all_seeds(&expected),
        "seeds vs reference"
    );
    // The Learner returns the model without autodiff, which has no latent weights.
    assert_eq!(
        Fingerprint::of(&trained).first_difference(&Fingerprint::of(&expected.valid())),
        None,
        "parameters vs reference"
    );
}

#[test]
fn multi_device_paper_with_transitions_matches_the_summed_reference() {
    burn_multi_device_matches_the_summed_reference("paper-transitions", paper(true), true);
}

#[test]
fn multi_device_paper_without_transitions_matches_the_summed_reference() {
    burn_multi_device_matches_the_summed_reference("paper-frozen", paper(false), false);
}

#[test]
fn multi_device_sign_straight_through_matches_the_summed_reference() {
    burn_multi_device_matches_the_summed_reference(
        "sign-straight-through",
        sign(BitTraining::StraightThrough),
        true,
    );
}

#[test]
fn multi_device_sign_flip_matches_the_summed_reference() {
    burn_multi_device_matches_the_summed_reference("sign-flip", sign(BitTraining::Flip), true);
}

#[test]
fn multi_device_ternary_straight_through_matches_the_summed_reference() {
    burn_multi_device_matches_the_summed_reference("ternary", ternary(), true);
}

#[test]
fn ddp_paper_with_transitions_matches_the_summed_reference() {
    replicas_match_the_summed_reference("paper-transitions", paper(true), true);
}

#[test]
fn ddp_paper_without_transitions_matches_the_summed_reference() {
    replicas_match_the_summed_reference("paper-frozen", paper(false), false);
}

#[test]
fn ddp_sign_straight_through_matches_the_summed_reference() {
    replicas_match_the_summed_reference(
        "sign-straight-through",
        sign(BitTraining::StraightThrough),
        true,
    );
}

#[test]
fn ddp_sign_flip_matches_the_summed_reference() {
    replicas_match_the_summed_reference("sign-flip", sign(BitTraining::Flip), true);
}

#[test]
fn ddp_ternary_straight_through_matches_the_summed_reference() {
    replicas_match_the_summed_reference("ternary", ternary(), true);
}

#[test]
fn ddp_paper_with_transitions_reports_a_diverged_replica() {
    a_diverged_replica_stops_training("paper-transitions-fault", paper(true));
}

#[test]
fn ddp_paper_without_transitions_reports_a_diverged_replica() {
    a_diverged_replica_stops_training("paper-frozen-fault", paper(false));
}

#[test]
fn ddp_sign_straight_through_reports_a_diverged_replica() {
    a_diverged_replica_stops_training(
        "sign-straight-through-fault",
        sign(BitTraining::StraightThrough),
    );
}

#[test]
fn ddp_sign_flip_reports_a_diverged_replica() {
    a_diverged_replica_stops_training("sign-flip-fault", sign(BitTraining::Flip));
}

#[test]
fn ddp_ternary_straight_through_reports_a_diverged_replica() {
    a_diverged_replica_stops_training("ternary-fault", ternary());
}

/// Burn's gradient accumulation: every replica sums the rounds' summed gradients and
/// steps every second round, as the reference does.
#[test]
fn ddp_accumulates_gradients_over_rounds_like_the_reference() {
    let start = initial(paper(true));
    let devices = vec![FlexDevice; 2];
    let run = train_on(
        "accumulation",
        start.clone(),
        devices,
        None,
        Interrupter::new(),
        2,
    );
    run.result.unwrap();
    assert_eq!(run.steps, EPOCHS * STEPS_PER_EPOCH / 2);
    let (expected, steps) = reference(start, usize::MAX, 2);
    assert_eq!(steps, run.steps);
    for replica in &run.replicas {
        assert_eq!(
            Fingerprint::of(replica).first_difference(&Fingerprint::of(&expected)),
            None
        );
    }
}

/// With three replicas the majority decides which one diverged: replica 0 can be named.
#[test]
fn ddp_names_the_main_replica_when_it_is_the_one_that_diverged() {
    let fault = FaultInjection {
        replica: 0,
        step: 2,
    };
    let run = train_parallel(
        "three-replicas-fault",
        initial(paper(true)),
        3,
        Some(fault),
        Interrupter::new(),
    );
    assert!(
        matches!(
            run.result,
            Err(ParallelError::ReplicaMismatch {
                step: 2,
                replica: 0,
                ..
            })
        ),
        "{:?}",
        run.result
    );
    assert_eq!(run.steps, 2);
    assert_eq!(
        Fingerprint::of(&run.replicas[1]),
        Fingerprint::of(&run.replicas[2]),
        "the two healthy replicas"
    );
}

/// An interrupt seen before the first step stops every replica (no deadlock, no step).
#[test]
fn ddp_an_interrupt_stops_every_replica() {
    let interrupter = Interrupter::new();
    interrupter.stop(Some("stopped before training"));
    let start = initial(paper(true));
    let run = train_parallel("interrupted", start.clone(), 2, None, interrupter);
    run.result.unwrap();
    assert_eq!(run.steps, 0);
    for replica in &run.replicas {
        assert_eq!(Fingerprint::of(replica), Fingerprint::of(&start));
    }
}

/// Batches like `BlobBatcher`, but panics on an item labelled past the classes.
#[derive(Clone, Default)]
struct PoisonedBatcher;

impl<B: Backend> Batcher<B, Item, Batch<B>> for PoisonedBatcher {
    fn batch(&self, items: Vec<Item>, device: &B::Device) -> Batch<B> {
        assert!(
            items.iter().all(|item| item.label < CLASSES),
            "a poisoned item"
        );
        BlobBatcher.batch(items, device)
    }
}

/// A replica that panics (here replica 1, on its fifth batch) releases the others instead
/// of leaving them waiting for it, and the panic reaches the caller of `launch`.
#[test]
fn ddp_a_panicking_replica_stops_training_instead_of_hanging() {
    let mut items = blobs(TRAIN_ITEMS, 1);
    items[256 + 4 * BATCH].label = CLASSES;
    let train = DataLoaderBuilder::new(PoisonedBatcher)
        .batch_size(BATCH)
        .set_device(FlexDevice)
        .build(InMemDataset::new(items));
    let valid = DataLoaderBuilder::<Flex, _, _>::new(BlobBatcher)
        .batch_size(64)
        .set_device(FlexDevice)
        .build(InMemDataset::new(blobs(128, 2)));
    let dir = std::env::temp_dir().join(format!("rbe-ddp-poisoned-{}", std::process::id()));
    let logs = dir.clone();

    // On its own thread, so that a hang fails the test instead of stalling the suite.
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Nothing the closure touches is looked at after a panic but the panic itself.
        let launched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let parallel = DataParallel::new(vec![FlexDevice; 2]).unwrap();
            let learner = Learner::new(initial(paper(true)), optimizer(), LR);
            SupervisedTraining::new(&logs, train, valid)
                .num_epochs(EPOCHS)
                .with_application_logger(None)
                .with_training_strategy(parallel.into_strategy())
                .launch(learner);
        }));
        let _ = done.send(launched);
    });
    let launched = outcome
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("training hung after a replica panicked");
    let _ = std::fs::remove_dir_all(&dir);
    let panic = launched.expect_err("the replica's panic reaches the caller");
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(message.contains("a poisoned item"), "{message}");
}

#[test]
fn ddp_refuses_an_empty_device_list_and_a_fault_on_no_replica() {
    assert_eq!(
        DataParallel::<Components>::new(Vec::new()).err(),
        Some(ParallelError::NoDevices)
    );
    let fault = FaultInjection {
        replica: 2,
        step: 1,
    };
    let refused = DataParallel::<Components>::new(vec![FlexDevice; 2])
        .unwrap()
        .with_fault(fault)
        .err();
    assert_eq!(
        refused,
        Some(ParallelError::NoSuchReplica {
            replica: 2,
            replicas: 2
        })
    );
}

/// Two replicas on WGPU (one device listed twice: in Burn 0.21 a tensor cannot move between
/// two WGPU devices, `to_device` reaches CubeCL's unimplemented server-to-server copy), with
/// fusion and autotune on: the replicas still agree bit for bit after every step (the check
/// would stop training otherwise), and the bits moved.
#[cfg(feature = "wgpu")]
#[test]
fn ddp_replicas_agree_on_wgpu() {
    type W = Autodiff<burn::backend::Wgpu>;
    let Some(device) = rbe::testing::wgpu_device() else {
        return;
    };
    W::seed(&device, 3);
    let start = classifier::<W>(paper(true), &device);
    let bits_before = all_seeds(&start);
    let run = train_on("wgpu", start, vec![device; 2], None, Interrupter::new(), 1);
    run.result.unwrap();
    assert_eq!(run.steps, EPOCHS * STEPS_PER_EPOCH);
    assert_eq!(all_seeds(&run.replicas[0]), all_seeds(&run.replicas[1]));
    assert!(
        bits_before
            .iter()
            .zip(all_seeds(&run.replicas[0]))
            .any(|(a, b)| a.hi != b.hi),
        "state transitions moved no bits"
    );
}
