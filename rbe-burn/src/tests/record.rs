//! Saving and loading: bit-exact round trips and typed errors for damaged or mismatched
//! files.

use burn::backend::Autodiff;
use burn::module::Module;
use burn::record::{DefaultRecorder, FileRecorder, Recorder};
use burn::tensor::backend::Backend;

use super::*;
use crate::{RbeError, RbeLinear, RbeLinearConfig, RbeRecorder, load_checked};

fn dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rbe-record-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config() -> RbeLinearConfig {
    RbeLinearConfig::new(23, 17)
        .with_block_size(8)
        .with_residual_rank(3)
}

/// Every stored value as exact bits: seeds (hi, r, theta), residual and bias.
fn snapshot<B: crate::RbeBackend>(layer: &RbeLinear<B>) -> (Vec<Packed128>, Vec<u32>) {
    let mut floats = Vec::new();
    let res = layer.residual.as_ref().unwrap();
    for t in [
        res.u.val().flatten::<1>(0, 1),
        res.v.val().flatten::<1>(0, 1),
        layer.bias.as_ref().unwrap().val(),
    ] {
        floats.extend(
            t.into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .unwrap()
                .into_iter()
                .map(f32::to_bits),
        );
    }
    (layer.seeds_packed().unwrap(), floats)
}

fn round_trip<B: crate::RbeBackend, R: FileRecorder<B>>(
    device: &B::Device,
    recorder: R,
    name: &str,
) {
    let mut rng = rng(41);
    let layout = config().layout().unwrap();
    let seeds = random_seeds(&mut rng, layout.num_blocks());
    let layer = config().init_with_seeds::<B>(&seeds, device).unwrap();
    let before = snapshot(&layer);
    assert_eq!(before.0, seeds, "upload is exact");
    let path = dir().join(name);
    layer.clone().save_file(&path, &recorder).unwrap();
    let fresh = config().init::<B>(device);
    let loaded = load_checked(fresh, &path, &recorder, device).unwrap();
    assert_eq!(snapshot(&loaded), before, "{name}: bit-exact round trip");
}

/// Every full-precision path: Burn's default recorder, the checksummed one, and an autodiff
/// model, which saves the same record (its transition probe is not saved).
fn round_trips<B: crate::RbeBackend>(device: &B::Device) {
    round_trip::<B, _>(device, DefaultRecorder::new(), "default");
    round_trip::<B, _>(
        device,
        RbeRecorder::<burn::record::FullPrecisionSettings>::new(),
        "checksummed",
    );
    round_trip::<Autodiff<B>, _>(
        device,
        RbeRecorder::<burn::record::FullPrecisionSettings>::new(),
        "autodiff",
    );
}

backend_tests!(records_round_trip_bit_exact, |B, device| {
    round_trips::<B>(device)
});

fn saved<B: Backend + crate::RbeBackend>(device: &B::Device, name: &str) -> std::path::PathBuf {
    let path = dir().join(name).with_extension("rbe");
    config()
        .init::<B>(device)
        .save_file(
            &path,
            &RbeRecorder::<burn::record::FullPrecisionSettings>::new(),
        )
        .unwrap();
    path
}

#[cfg(feature = "ndarray")]
#[test]
fn damaged_files_are_typed_errors() {
    let device = Default::default();
    let recorder = RbeRecorder::<burn::record::FullPrecisionSettings>::new();
    let load = |path: &std::path::Path| {
        load_checked(config().init::<NdArray>(&device), path, &recorder, &device)
    };

    let path = saved::<NdArray>(&device, "truncated");
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 5, 20, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(
            matches!(load(&path), Err(RbeError::Recorder(_))),
            "cut at {cut}"
        );
    }

    let path = saved::<NdArray>(&device, "flipped");
    let bytes = std::fs::read(&path).unwrap();
    for at in [3, 12, 30, bytes.len() / 2, bytes.len() - 2] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        std::fs::write(&path, &damaged).unwrap();
        assert!(
            matches!(load(&path), Err(RbeError::Recorder(_))),
            "flip at {at}"
        );
    }

    assert!(matches!(
        load(&dir().join("missing.rbe")),
        Err(RbeError::Recorder(_))
    ));
}

#[cfg(feature = "ndarray")]
#[test]
fn truncated_default_recorder_files_are_errors_not_panics() {
    let device = Default::default();
    let recorder = DefaultRecorder::new();
    let path = dir().join("plain");
    config()
        .init::<NdArray>(&device)
        .save_file(&path, &recorder)
        .unwrap();
    let path = path.with_extension("mpk");
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 10, bytes.len() / 3, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let got = load_checked(config().init::<NdArray>(&device), &path, &recorder, &device);
        assert!(got.is_err(), "cut at {cut}");
    }
}

#[cfg(feature = "ndarray")]
#[test]
fn mismatched_records_are_typed_errors() {
    let device = Default::default();
    let recorder = RbeRecorder::<burn::record::FullPrecisionSettings>::new();
    let path = saved::<NdArray>(&device, "mismatch");
    for other in [
        config().with_block_size(4),
        config().with_residual_rank(2),
        RbeLinearConfig::new(23, 18)
            .with_block_size(8)
            .with_residual_rank(3),
    ] {
        let err =
            load_checked(other.init::<NdArray>(&device), &path, &recorder, &device).unwrap_err();
        // The record carries the layer's structure, so each is refused before any
        // parameter shape is compared.
        assert!(
            matches!(err, RbeError::RecordMismatch { .. }),
            "{other:?}: {err}"
        );
    }
}

/// A seed record holding a NaN `r` is refused when it is saved: no file is written.
#[cfg(feature = "ndarray")]
#[test]
fn non_finite_seeds_are_refused_at_save() {
    let device = Default::default();
    let recorder = RbeRecorder::<burn::record::FullPrecisionSettings>::new();
    let mut record = config().init::<NdArray>(&device).into_record();
    let coords = record.seeds.coords.val().slice_assign(
        [0..1, 0..1],
        burn::tensor::Tensor::from_data([[f32::NAN]], &device),
    );
    record.seeds.coords = burn::module::Param::from_tensor(coords);
    let path = dir().join("nan.rbe");
    let _ = std::fs::remove_file(&path);
    let err = Recorder::<NdArray>::record(&recorder, record, path.clone()).unwrap_err();
    assert!(err.to_string().contains("seed 0"), "{err}");
    assert!(!path.exists(), "nothing written");
}

/// A file whose seed 0 was altered on disk to a NaN `r` fails to load, whichever check
/// catches it first (seed validation or the record's own integrity check).
#[cfg(feature = "ndarray")]
#[test]
fn a_non_finite_seed_in_a_file_is_rejected() {
    let device = Default::default();
    let recorder = DefaultRecorder::new();
    let layer = config().init::<NdArray>(&device);
    let seed = layer.seeds_packed().unwrap()[0];
    let path = dir().join("nan-on-disk");
    layer.save_file(&path, &recorder).unwrap();
    let path = path.with_extension("mpk");
    let mut bytes = std::fs::read(&path).unwrap();
    // `lo` = r bits << 32 | theta bits, a MessagePack uint64: 0xcf and 8 big-endian bytes.
    let mut pattern = vec![0xcf];
    pattern.extend(seed.lo.to_be_bytes());
    let at = bytes
        .windows(pattern.len())
        .position(|w| w == pattern.as_slice())
        .expect("seed 0's lo in the file");
    bytes[at + 1..at + 5].copy_from_slice(&f32::NAN.to_bits().to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err =
        load_checked(config().init::<NdArray>(&device), &path, &recorder, &device).unwrap_err();
    assert!(
        matches!(err, RbeError::Recorder(_) | RbeError::NonFinite(_)),
        "{err}"
    );
}

/// Non-finite values in the other float parameters are saved as they are and rejected by
/// `load_checked`.
#[cfg(feature = "ndarray")]
#[test]
fn a_non_finite_bias_in_a_record_is_rejected() {
    let device = Default::default();
    let recorder = RbeRecorder::<burn::record::FullPrecisionSettings>::new();
    let mut layer = config().init::<NdArray>(&device);
    let bias = layer.bias.take().unwrap().val().slice_assign(
        0..1,
        burn::tensor::Tensor::from_data([f32::INFINITY], &device),
    );
    layer.bias = Some(burn::module::Param::from_tensor(bias));
    let path = dir().join("inf-bias.rbe");
    layer.save_file(&path, &recorder).unwrap();
    let err =
        load_checked(config().init::<NdArray>(&device), &path, &recorder, &device).unwrap_err();
    assert!(
        matches!(err, RbeError::NonFinite(ref p) if p.contains("bias")),
        "{err}"
    );
}

#[derive(burn::module::Module, Debug)]
#[allow(clippy::large_enum_variant)] // a two-variant fixture, never stored in bulk
enum EitherLayer<B: Backend> {
    Rbe(RbeLinear<B>),
    Dense(burn::nn::Linear<B>),
}

#[cfg(feature = "ndarray")]
#[test]
fn a_record_of_another_enum_variant_is_an_error_not_a_panic() {
    let device = Default::default();
    let recorder = RbeRecorder::<burn::record::FullPrecisionSettings>::new();
    let path = dir().join("variant.rbe");
    EitherLayer::<NdArray>::Rbe(config().init(&device))
        .save_file(&path, &recorder)
        .unwrap();
    let dense = EitherLayer::<NdArray>::Dense(burn::nn::LinearConfig::new(23, 17).init(&device));
    let err = load_checked(dense, &path, &recorder, &device).unwrap_err();
    assert!(matches!(err, RbeError::Config(_)), "{err}");
}
