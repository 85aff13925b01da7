//! Smoke test of the MNIST example: RBE models trained through the `Learner` for one epoch on
//! the first 2,000 training images must clear accuracy floors that need working RBE
//! gradients, and a saved model must reload to the same test accuracy.
//!
//! Floors were measured with the example (`--train-limit 2000 --epochs 1 --batch-size 32`,
//! NdArray, seeds 1, 2, 3, 7, 8 and 42):
//! - both layers RBE (B=8, transitions off, lr 0.1): 0.52-0.65 trained (0.62 with seed 42);
//!   0.27-0.35 with the hidden layer frozen at its initialisation (`--freeze-hidden`). The
//!   floor 0.45 lies between, so a broken RBE gradient cannot reach it.
//! - RBE hidden + dense head (transitions on, lr 0.01): 0.82-0.85. A dense head on the
//!   *frozen* random RBE features reaches 0.79-0.84 too, so this floor (0.75) checks the
//!   practical configuration and the transition path end to end, not the RBE gradient; the
//!   first model does that. (An 80% floor on this model alone would not catch a broken RBE
//!   gradient.)
//!
//! The init-from tests start from a dense model trained for one epoch on a few hundred
//! images: encoding it (RBE or low-rank), evaluating, training on and reporting go through
//! the example's own job, and models it cannot compress are refused before anything is
//! written.
//!
//! The other tests check the example's damage handling in seconds: the cache check rejects
//! altered content behind a valid size and header, a failed, interrupted or refused
//! (non-finite) save keeps the previous model byte for byte, and a diverging run stops with
//! an error instead of saving.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use rbe::{RbeAutodiffBackend, RbeBackend};

use crate::scratch::Scratch;

use rbe_examples::backend::{BackendJob, BackendKind};
use rbe_examples::layer::Layer;
use rbe_examples::mnist::data::{self, DataDir, DataError, Mnist};
use rbe_examples::mnist::init_from::InitFromJob;
use rbe_examples::mnist::model::{Mlp, ModelConfig, ModelKind, RbeFormat};
use rbe_examples::mnist::run::TrainJob;
use rbe_examples::mnist::training::{
    Accuracy, InitFromMismatch, ModelRecorder, TrainError, TrainingConfig, evaluate, load,
    model_paths, save, train,
};
use rbe_examples::saved_pair::{self, PairError};

/// NdArray: deterministic, needs no adapter, and in a debug build about as fast as lavapipe
/// (measured: 18 s vs 20 s for this training run).
type Inner = NdArray<f32>;
type Train = Autodiff<Inner>;

const TRAIN_IMAGES: usize = 2_000;
const EVAL_BATCH: usize = 500;

fn smoke_config(model: ModelConfig, lr: f64) -> TrainingConfig {
    TrainingConfig::new(model)
        .with_epochs(1)
        .with_batch_size(32)
        .with_lr(lr)
        .with_seed(42)
        .with_train_limit(Some(TRAIN_IMAGES))
}

/// Both layers RBE: the model whose accuracy needs working RBE gradients.
fn all_rbe_config() -> TrainingConfig {
    smoke_config(
        ModelConfig::new(ModelKind::Rbe)
            .with_block_size(8)
            .with_transitions(false),
        0.1,
    )
}

/// Floor for [`all_rbe_config`]; see the module docs for how it was chosen.
const ALL_RBE_FLOOR: f64 = 0.45;

/// Trains `config` on `B` and returns the model with its accuracy on the full test set.
fn train_and_test<B>(
    name: &str,
    config: &TrainingConfig,
    data: &Mnist,
    scratch: &Scratch,
    device: &B::Device,
) -> (Mlp<B::InnerBackend>, Accuracy)
where
    B: RbeAutodiffBackend,
    B::InnerBackend: RbeBackend,
{
    let start = Instant::now();
    let trained = train::<B>(config, data, &scratch.0.join(name), device)
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    let test = config.test_range();
    let accuracy = evaluate(
        &trained.model,
        data.test(test.start, test.end),
        EVAL_BATCH,
        device,
    );
    eprintln!(
        "{name}: test accuracy {:.4} ({}/{}), {:.1} s",
        accuracy.fraction(),
        accuracy.correct,
        accuracy.total,
        start.elapsed().as_secs_f64()
    );
    (trained.model, accuracy)
}

/// The data, or a failure that says where to put it; loaded once for all tests.
fn mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::load(&DataDir::resolve(None)).unwrap_or_else(|err| panic!("{err}")))
}

#[test]
fn rbe_mlp_learns_mnist_and_reloads() {
    let data = mnist();
    let scratch = Scratch::new("mnist-smoke");
    let device = Default::default();

    let all_rbe = all_rbe_config();
    let (model, accuracy) = train_and_test::<Train>("rbe-both", &all_rbe, data, &scratch, &device);
    assert!(
        accuracy.fraction() >= ALL_RBE_FLOOR,
        "RBE in both layers reached only {:.4}: its gradients are not training the seeds",
        accuracy.fraction()
    );

    // The saved model must reload bit for bit: same predictions, same count.
    let path = save(&model, &all_rbe, &scratch.0.join("rbe-both").join("model"))
        .unwrap_or_else(|err| panic!("{err}"));
    let (reloaded, config) = load::<Inner>(&path, &device).unwrap_or_else(|err| panic!("{err}"));
    let test = config.test_range();
    let again = evaluate(
        &reloaded,
        data.test(test.start, test.end),
        EVAL_BATCH,
        &device,
    );
    assert_eq!(again, accuracy, "the reloaded model classifies differently");

    let dense_head = smoke_config(
        ModelConfig::new(ModelKind::Rbe)
            .with_block_size(8)
            .with_dense_head(true),
        1e-2,
    );
    let (_, accuracy) =
        train_and_test::<Train>("rbe-dense-head", &dense_head, data, &scratch, &device);
    assert!(
        accuracy.fraction() >= 0.75,
        "RBE hidden + dense head reached only {:.4}",
        accuracy.fraction()
    );
}

/// The same learning check through the CubeCL kernels (lavapipe on CI). Measured with the
/// example on WGPU: 0.60-0.63 trained (seeds 1-3 and 42), 0.26-0.34 with the hidden layer
/// frozen (seeds 1-3).
#[cfg(feature = "wgpu")]
#[test]
fn rbe_mlp_learns_mnist_on_wgpu() {
    let Some(device) = rbe::testing::wgpu_device() else {
        return;
    };
    let data = mnist();
    let scratch = Scratch::new("mnist-smoke-wgpu");
    let (_, accuracy) = train_and_test::<Autodiff<burn::backend::Wgpu<f32, i32>>>(
        "rbe-both-wgpu",
        &all_rbe_config(),
        data,
        &scratch,
        &device,
    );
    assert!(
        accuracy.fraction() >= ALL_RBE_FLOOR,
        "RBE in both layers reached only {:.4} on WGPU: the kernels' gradients are not \
         training the seeds",
        accuracy.fraction()
    );
}

/// The two files of a saved model, byte for byte.
fn snapshot(stem: &Path) -> (Vec<u8>, Vec<u8>) {
    let paths = model_paths::<Inner>(stem);
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|err| panic!("{}: {err}", p.display()));
    (read(&paths.weights), read(&paths.meta))
}

/// The logits of a fixed batch: equal logits, same model.
fn logits(model: &Mlp<Inner>) -> Vec<f32> {
    let device = Default::default();
    let input = Tensor::<Inner, 1, Int>::arange(0..2 * 784, &device)
        .float()
        .div_scalar(1000.0)
        .reshape([2, 784]);
    model.forward(input).into_data().to_vec::<f32>().unwrap()
}

/// RBE hidden layer, dense head: both kinds of parameters in a model that builds quickly.
fn small_config() -> TrainingConfig {
    TrainingConfig::new(
        ModelConfig::new(ModelKind::Rbe)
            .with_block_size(8)
            .with_dense_head(true),
    )
}

fn small_model(seed: u64) -> Mlp<Inner> {
    let device = Default::default();
    Inner::seed(&device, seed);
    small_config()
        .model
        .try_init::<Inner>(&device)
        .unwrap_or_else(|err| panic!("{err}"))
}

fn gunzip(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    out
}

#[test]
fn mnist_cache_check_rejects_altered_content_behind_a_valid_header() {
    let scratch = Scratch::new("mnist-cache-check");
    let cache = scratch.0.join("cache");
    // The test labels: the smallest of the four files (10 KB).
    let file = &data::FILES[3];
    assert_eq!(file.name, "t10k-labels-idx1-ubyte");
    let source = data::default_dir().join(format!("{}.gz", file.name));
    let canonical = gunzip(&source);
    let dest = cache.join(file.split).join(file.name);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();

    // One label changed to another digit: size and IDX header are still the canonical ones,
    // which is all a size-and-header check would look at.
    let mut altered = canonical.clone();
    altered[8 + 123] = (altered[8 + 123] + 1) % 10;
    assert_eq!(altered.len() as u64, file.len);
    assert_eq!(altered[..8], canonical[..8]);
    std::fs::write(&dest, &altered).unwrap();
    let err = data::check_cached(&dest, file).expect_err("an altered label was accepted");
    assert!(
        matches!(&err, DataError::Corrupt { path, reason } if *path == dest && reason.contains("SHA-256")),
        "{err}"
    );

    // Without a replacement, preparing the cache reports the damaged file, never uses it.
    let empty = scratch.0.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let without = DataDir {
        path: Some(empty),
        origin: "--data-dir",
    };
    match data::prepare_in(&without, &cache) {
        Err(DataError::Corrupt { path, .. }) => assert_eq!(path, dest),
        other => panic!("expected the damaged cache file to be reported, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        altered,
        "reported, not removed"
    );

    // A source with the same damage is refused too, and the cached file stays as it was.
    let bad_source = scratch.0.join("bad-source");
    std::fs::create_dir_all(&bad_source).unwrap();
    std::fs::write(bad_source.join(file.name), &altered).unwrap();
    let bad = DataDir {
        path: Some(bad_source.clone()),
        origin: "--data-dir",
    };
    match data::prepare_in(&bad, &cache) {
        Err(DataError::Corrupt { path, .. }) => assert_eq!(path, bad_source.join(file.name)),
        other => panic!("expected the damaged source to be refused, got {other:?}"),
    }

    // With the canonical .gz at hand, the damaged file is replaced from it; the other three
    // files are simply missing from this data directory.
    let good_source = scratch.0.join("good-source");
    std::fs::create_dir_all(&good_source).unwrap();
    std::fs::copy(&source, good_source.join(format!("{}.gz", file.name))).unwrap();
    let good = DataDir {
        path: Some(good_source),
        origin: "--data-dir",
    };
    match data::prepare_in(&good, &cache) {
        Err(DataError::Missing { files, .. }) => {
            assert_eq!(files.len(), 3, "{files:?}");
            assert!(!files.contains(&file.name), "{files:?}");
        }
        other => panic!("expected the other three files to be missing, got {other:?}"),
    }
    assert_eq!(std::fs::read(&dest).unwrap(), canonical, "not re-seeded");
    data::check_cached(&dest, file).unwrap_or_else(|err| panic!("{err}"));
}

#[test]
fn mnist_save_refuses_a_non_finite_model_and_keeps_the_previous_one() {
    let device = Default::default();
    let scratch = Scratch::new("mnist-save-non-finite");
    let stem = scratch.0.join("model");
    let config = small_config();
    let good = small_model(1);
    save(&good, &config, &stem).unwrap_or_else(|err| panic!("{err}"));
    let before = snapshot(&stem);

    let mut broken = good.clone();
    match &mut broken.head {
        Layer::Dense(linear) => {
            linear.weight = linear.weight.clone().map(|w| w.mul_scalar(f32::NAN));
        }
        _ => unreachable!("the head is dense"),
    }
    let err = save(&broken, &config, &stem).expect_err("a NaN model was saved");
    assert!(
        matches!(&err, TrainError::NonFinite { param, .. } if param.contains("head")),
        "{err}"
    );
    assert!(err.to_string().contains("--lr"), "{err}");
    assert_eq!(snapshot(&stem), before, "the previous model was touched");
    let (reloaded, _) = load::<Inner>(&stem, &device).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(logits(&reloaded), logits(&good));
}

#[test]
fn mnist_interrupted_or_failed_save_keeps_the_previous_model() {
    let device = Default::default();
    let scratch = Scratch::new("mnist-save-interrupted");
    let stem = scratch.0.join("model");
    let paths = model_paths::<Inner>(&stem);
    let config = small_config();
    let (a, b) = (small_model(1), small_model(2));
    assert_ne!(logits(&a), logits(&b));
    save(&a, &config, &stem).unwrap_or_else(|err| panic!("{err}"));
    let before = snapshot(&stem);
    let loads = |what: &str| {
        let (model, _) =
            load::<Inner>(&stem, &device).unwrap_or_else(|err| panic!("{what}: {err}"));
        logits(&model)
    };
    let meta = serde_json::to_value(&config).unwrap();

    // The recorder fails half-way through the weights.
    let err = saved_pair::write(&paths, meta.clone(), |staged| {
        std::fs::write(staged, b"half a record").unwrap();
        Err("simulated failure".into())
    })
    .expect_err("a failed recorder was reported as a save");
    assert!(matches!(err, PairError::Weights { .. }), "{err}");
    assert_eq!(snapshot(&stem), before);
    assert!(!paths.staged_weights.exists() && !paths.staged_meta.exists());
    assert_eq!(loads("after a failed save"), logits(&a));

    // Interrupted before the commit: `b` is completely staged, nothing renamed yet.
    let write_b = |staged: &Path| {
        b.clone()
            .save_file(staged.to_path_buf(), &ModelRecorder::new())
            .map_err(|err| err.to_string())
    };
    saved_pair::stage(&paths, meta.clone(), write_b).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(snapshot(&stem), before);
    assert_eq!(loads("before the commit"), logits(&a));

    // Interrupted right after the commit (the metadata renamed, the weights not): loading
    // finishes the save, so the pair is `b`'s, never `b`'s metadata with `a`'s weights.
    saved_pair::stage(&paths, meta, write_b).unwrap_or_else(|err| panic!("{err}"));
    std::fs::rename(&paths.staged_meta, &paths.meta).unwrap();
    assert_eq!(loads("after the commit"), logits(&b));
    assert!(!paths.staged_weights.exists());

    // Weights that are not the ones the metadata was saved with are refused.
    std::fs::write(&paths.weights, &before.0).unwrap();
    let err = load::<Inner>(&stem, &device).expect_err("mismatched weights were loaded");
    assert!(
        matches!(err, TrainError::Checkpoint(PairError::Mismatch { .. })),
        "{err}"
    );

    // So is damaged metadata, even when it still parses.
    save(&a, &config, &stem).unwrap_or_else(|err| panic!("{err}"));
    let json = std::fs::read_to_string(&paths.meta).unwrap();
    let edited = json.replacen("\"epochs\": 5", "\"epochs\": 6", 1);
    assert_ne!(edited, json);
    std::fs::write(&paths.meta, edited).unwrap();
    let err = load::<Inner>(&stem, &device).expect_err("damaged metadata was loaded");
    assert!(
        matches!(err, TrainError::Checkpoint(PairError::Meta { .. })),
        "{err}"
    );
}

#[test]
fn mnist_diverging_training_stops_and_keeps_the_earlier_model() {
    let device = Default::default();
    let scratch = Scratch::new("mnist-diverge");
    let stem = scratch.0.join("model");
    save(&small_model(1), &small_config(), &stem).unwrap_or_else(|err| panic!("{err}"));
    let before = snapshot(&stem);

    // A learning rate beyond f32: the first Adam step makes the parameters infinite.
    let config = small_config()
        .with_epochs(2)
        .with_batch_size(32)
        .with_lr(1e39)
        .with_train_limit(Some(64))
        .with_test_limit(Some(100));
    let job = TrainJob {
        config,
        artifact_dir: scratch.0.clone(),
        data_dir: DataDir::resolve(None),
        artifact_flag: "--artifact-dir",
        parallelism: Default::default(),
    };
    let err = match job.run::<Inner>(device, BackendKind::Ndarray) {
        Ok(report) => panic!("training with lr 1e39 succeeded: {}", report.to_json()),
        Err(err) => err,
    };
    assert!(
        matches!(
            err,
            TrainError::Diverged {
                step: 1,
                epoch: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--lr"), "{err}");
    assert_eq!(snapshot(&stem), before, "the earlier model was touched");
}

/// `--devices` beyond what the backend offers, `--devices 0` and `--ddp` on one device are
/// typed errors before any data is read or anything trained, and nothing is written.
#[test]
fn mnist_bad_device_counts_are_refused_before_training() {
    use rbe_examples::backend::DevicesError;
    use rbe_examples::mnist::training::Parallelism;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let cases = [
        (
            threads + 1,
            false,
            DevicesError::TooMany {
                kind: BackendKind::Ndarray,
                asked: threads + 1,
                offered: threads,
            },
        ),
        (0, false, DevicesError::None),
        (1, true, DevicesError::DdpAlone),
    ];
    for (devices, ddp, expected) in cases {
        let scratch = Scratch::new("mnist-devices");
        let job = TrainJob {
            config: small_config(),
            artifact_dir: scratch.0.clone(),
            // Never read: the devices are checked first.
            data_dir: DataDir::resolve(Some(scratch.0.join("no-such-dir"))),
            artifact_flag: "--artifact-dir",
            parallelism: Parallelism { devices, ddp },
        };
        match job.run::<Inner>(Default::default(), BackendKind::Ndarray) {
            Err(TrainError::Devices(err)) => {
                assert_eq!(err, expected);
                assert!(err.to_string().contains("--d"), "{err}");
            }
            Err(other) => panic!("--devices {devices} --ddp {ddp}: {other}"),
            Ok(report) => panic!(
                "--devices {devices} --ddp {ddp} trained: {}",
                report.to_json()
            ),
        }
        assert!(!scratch.0.join("model.rbe").exists(), "a model was saved");
    }
}

/// Images an init-from test trains on and evaluates: enough for accuracies well above chance,
/// few enough for a debug build.
const INIT_TRAIN_IMAGES: usize = 300;
const INIT_TEST_IMAGES: usize = 200;

/// The dense 784-256-10 model, trained one epoch on [`INIT_TRAIN_IMAGES`] and saved as
/// `<dir>/model`; returns the model file.
fn trained_dense(dir: &Path) -> std::path::PathBuf {
    let config = TrainingConfig::new(ModelConfig::new(ModelKind::Dense))
        .with_epochs(1)
        .with_batch_size(32)
        .with_lr(3e-3)
        .with_train_limit(Some(INIT_TRAIN_IMAGES))
        .with_test_limit(Some(INIT_TEST_IMAGES));
    let trained = train::<Train>(&config, mnist(), dir, &Default::default())
        .unwrap_or_else(|err| panic!("dense: {err}"));
    save(&trained.model, &config, &dir.join("model")).unwrap_or_else(|err| panic!("{err}"))
}

/// An init-from run of `model` for `epochs` epochs on the small image counts.
fn init_from_job(
    model: ModelConfig,
    epochs: usize,
    init_from: &Path,
    artifact_dir: &Path,
) -> InitFromJob {
    InitFromJob {
        config: TrainingConfig::new(model)
            .with_epochs(epochs)
            .with_batch_size(32)
            .with_lr(3e-3)
            .with_train_limit(Some(INIT_TRAIN_IMAGES))
            .with_test_limit(Some(INIT_TEST_IMAGES)),
        init_from: init_from.to_path_buf(),
        artifact_dir: artifact_dir.to_path_buf(),
        data_dir: DataDir::resolve(None),
        artifact_flag: "--artifact-dir",
        parallelism: Default::default(),
    }
}

/// Runs `job` and returns its JSON line, parsed.
fn run_json(name: &str, job: InitFromJob) -> serde_json::Value {
    let start = Instant::now();
    let report = job
        .run::<Inner>(Default::default(), BackendKind::Ndarray)
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    let line = report.to_json();
    eprintln!("{name} ({:.1} s): {line}", start.elapsed().as_secs_f64());
    serde_json::from_str(&line).unwrap_or_else(|err| panic!("{name}: {err}: {line}"))
}

/// `json[key]` as a finite number.
fn number(json: &serde_json::Value, key: &str) -> f64 {
    let value = json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {json}"));
    assert!(value.is_finite(), "`{key}` is {value}");
    value
}

/// The fields every init-from report carries, in range, with encode errors below
/// `max_error`; returns the names of the layers with an encode error.
fn check_init_fields(
    json: &serde_json::Value,
    init_from: &Path,
    method: &str,
    max_error: f64,
) -> Vec<String> {
    for key in [
        "test_accuracy",
        "test_accuracy_after_encode",
        "dense_test_accuracy",
    ] {
        let accuracy = number(json, key);
        assert!((0.0..=1.0).contains(&accuracy), "`{key}` = {accuracy}");
    }
    assert!(number(json, "projection_compression") > 1.0, "{json}");
    assert!(number(json, "compression_vs_dense") > 1.0, "{json}");
    assert_eq!(json["method"], method);
    assert_eq!(json["init_from"], init_from.display().to_string());
    assert_eq!(json["test_images"], INIT_TEST_IMAGES);
    let errors = json["encode_rel_error"]
        .as_object()
        .unwrap_or_else(|| panic!("no encode_rel_error in {json}"));
    for (layer, error) in errors {
        let error = error.as_f64().unwrap_or(f64::NAN);
        assert!(
            error.is_finite() && (0.0..max_error).contains(&error),
            "encode error of {layer}: {error}"
        );
    }
    let mut layers: Vec<String> = errors.keys().filter(|k| *k != "overall").cloned().collect();
    layers.sort();
    assert!(errors.contains_key("overall"), "{json}");
    layers
}

#[test]
fn mnist_init_from_dense_encodes_trains_and_reports() {
    let scratch = Scratch::new("mnist-init-from");
    let dense_path = trained_dense(&scratch.0.join("dense"));
    let (dense, _) = load::<Inner>(&dense_path, &Default::default()).unwrap();
    let test = evaluate(
        &dense,
        mnist().test(0, INIT_TEST_IMAGES),
        EVAL_BATCH,
        &Default::default(),
    );
    // Well above chance, so that an encode that loses everything shows.
    assert!(test.fraction() > 0.5, "the dense model reached {test:?}");

    // Both layers, sign blueprint, one epoch from the encoded model.
    let sign = ModelConfig::new(ModelKind::Rbe)
        .with_format(RbeFormat::SignBlueprint)
        .with_block_size(8);
    let json = run_json(
        "sign-b8",
        init_from_job(sign, 1, &dense_path, &scratch.0.join("sign")),
    );
    assert_eq!(
        check_init_fields(&json, &dense_path, "sign-b8", 1.0),
        ["head", "hidden"]
    );
    assert_eq!(number(&json, "dense_test_accuracy"), test.fraction());
    assert_eq!(json["epochs"], 1);
    assert_eq!(json["eval_only"], false);
    assert!(number(&json, "seconds_per_epoch") > 0.0);

    // Encode only, dense head: the accuracy after the encode is the final one, and the saved
    // model reloads (as `--eval-only` does) to the same accuracy.
    let paper = ModelConfig::new(ModelKind::Rbe)
        .with_block_size(16)
        .with_residual_rank(2)
        .with_dense_head(true);
    let json = run_json(
        "paper-b16-r2",
        init_from_job(paper, 0, &dense_path, &scratch.0.join("paper")),
    );
    // The paper format's smallest amplitude lies above most weights of a briefly trained
    // model, so its encode error exceeds 1 (measured: 2.6); it must still be a number.
    assert_eq!(
        check_init_fields(&json, &dense_path, "paper-b16-r2", f64::MAX),
        ["hidden"]
    );
    assert_eq!(
        number(&json, "test_accuracy"),
        number(&json, "test_accuracy_after_encode")
    );
    assert!(json["seconds_per_epoch"].is_null());
    assert_eq!(json["train_images"], 0);
    let saved = Path::new(json["model_path"].as_str().unwrap());
    let (reloaded, config) = load::<Inner>(saved, &Default::default()).unwrap();
    assert_eq!(config.epochs, 0);
    let again = evaluate(
        &reloaded,
        mnist().test(0, INIT_TEST_IMAGES),
        EVAL_BATCH,
        &Default::default(),
    );
    assert_eq!(again.fraction(), number(&json, "test_accuracy"));

    // Low-rank from the truncated SVD, both layers, encode only: the head's rank is capped
    // at its 10 outputs, so its factors reproduce it up to f32 rounding.
    let low_rank = ModelConfig::new(ModelKind::Lowrank).with_rank(16);
    let json = run_json(
        "lowrank-k16",
        init_from_job(low_rank, 0, &dense_path, &scratch.0.join("lowrank")),
    );
    assert_eq!(
        check_init_fields(&json, &dense_path, "lowrank-k16", 1.0),
        ["head", "hidden"]
    );
    assert!(json["encode_rel_error"]["head"].as_f64().unwrap() < 1e-5);
    assert_eq!(
        number(&json, "test_accuracy"),
        number(&json, "test_accuracy_after_encode")
    );
}

#[test]
fn mnist_init_from_refuses_what_it_cannot_compress_and_writes_nothing() {
    let device = Default::default();
    let scratch = Scratch::new("mnist-init-from-bad");
    let target = ModelConfig::new(ModelKind::Rbe).with_block_size(8);
    let refuse = |name: &str, path: &Path| -> TrainError {
        let artifacts = scratch.0.join(format!("{name}-out"));
        let job = init_from_job(target.clone(), 1, path, &artifacts);
        let err = match job.run::<Inner>(device, BackendKind::Ndarray) {
            Ok(report) => panic!("{name} was compressed: {}", report.to_json()),
            Err(err) => err,
        };
        eprintln!("{name}: {err}");
        assert!(
            !artifacts.exists(),
            "{name}: {} was written",
            artifacts.display()
        );
        err
    };

    // An RBE model (hidden RBE, dense head).
    let rbe = save(&small_model(1), &small_config(), &scratch.path("rbe")).unwrap();
    let err = refuse("rbe", &rbe);
    assert!(
        matches!(
            &err,
            TrainError::InitFrom {
                source: InitFromMismatch::NotDense {
                    layer: "hidden",
                    kind: "Rbe"
                },
                ..
            }
        ),
        "{err}"
    );

    // A dense model of another hidden width.
    let narrow = ModelConfig::new(ModelKind::Dense).with_d_hidden(32);
    let narrow_model = narrow.try_init::<Inner>(&device).unwrap();
    let narrow = save(
        &narrow_model,
        &TrainingConfig::new(narrow),
        &scratch.path("narrow"),
    )
    .unwrap();
    let err = refuse("narrow", &narrow);
    assert!(
        matches!(
            &err,
            TrainError::InitFrom {
                source: InitFromMismatch::Shape {
                    layer: "hidden",
                    expected: [784, 256],
                    found: [784, 32]
                },
                ..
            }
        ),
        "{err}"
    );

    // A dense model of the right shape whose weights file was cut short.
    let dense = ModelConfig::new(ModelKind::Dense);
    let dense_model = dense.try_init::<Inner>(&device).unwrap();
    let truncated = save(
        &dense_model,
        &TrainingConfig::new(dense),
        &scratch.path("truncated"),
    )
    .unwrap();
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = refuse("truncated", &truncated);
    assert!(
        matches!(&err, TrainError::Checkpoint(PairError::Mismatch { .. })),
        "{err}"
    );
}
