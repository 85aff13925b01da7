//! Saving and loading an `RbeLinear` with every Burn file recorder a user reaches for, and
//! `load_checked` refusing records of another layer structure.
//!
//! The layer has the default `FanIn` seeds, whose `hi` halves do not fit 16 bits (asserted),
//! a low-rank residual with non-zero factors, and a bias. It is saved with
//! `model.clone().save_file(..)` and loaded into a fresh layer of the same configuration with
//! `rbe::load_checked`. Seeds must come back bit for bit under every recorder, half precision
//! included. Full-precision recorders must reproduce the residual, the bias and the output
//! exactly; half-precision ones round residual and bias to f16 (checked value by value) and
//! the output may move only by what that rounding can explain (bound below).

use std::path::PathBuf;

use burn::backend::Flex;
use burn::module::Module;
use burn::record::{
    BinFileRecorder, CompactRecorder, DefaultRecorder, FileRecorder, FullPrecisionSettings,
    HalfPrecisionSettings, NamedMpkFileRecorder, PrettyJsonFileRecorder,
};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, f16};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rbe::{
    BitTraining, BlockShape, LowRankResidual, RbeError, RbeLinear, RbeLinearConfig, RbeRecorder,
    SignFormat, load_checked,
};

use crate::scratch::Scratch;

/// Flex: Burn 0.21's recommended CPU backend, as a user's default features build it.
type B = Flex;

const D_IN: usize = 24;
const D_OUT: usize = 16;
const RANK: usize = 3;
const BATCH: usize = 5;

fn config() -> RbeLinearConfig {
    RbeLinearConfig::new(D_IN, D_OUT)
        .with_block_size(8)
        .with_residual_rank(RANK)
}

fn host_tensor<const D: usize>(rng: &mut StdRng, shape: [usize; D]) -> Tensor<B, D> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

/// The layer to save: default seeds and bias, and a residual whose `U` is not zero (a fresh
/// residual starts at `U = 0`, which every precision stores exactly).
fn saved_layer() -> RbeLinear<B> {
    let device = Default::default();
    B::seed(&device, 11);
    let mut layer = config().init::<B>(&device);
    let mut rng = StdRng::seed_from_u64(12);
    layer.residual = Some(LowRankResidual::from_factors(
        host_tensor(&mut rng, [D_OUT, RANK]),
        host_tensor(&mut rng, [RANK, D_IN]),
    ));
    layer
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

/// `(U, V, b)` of a layer, flattened.
fn residual_and_bias(layer: &RbeLinear<B>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let res = layer.residual.as_ref().expect("the layer has a residual");
    (
        values(res.u.val()),
        values(res.v.val()),
        values(layer.bias.as_ref().expect("the layer has a bias").val()),
    )
}

fn input() -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(13);
    (0..BATCH * D_IN)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

fn output(layer: &RbeLinear<B>) -> Vec<f32> {
    let x = Tensor::<B, 2>::from_data(TensorData::new(input(), [BATCH, D_IN]), &Default::default());
    values(layer.forward(x))
}

/// What f16 storage does to an f32 (round to nearest even, as Burn's conversion does).
fn through_f16(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// Saves the layer with `recorder`, loads it into a fresh layer with `load_checked`, and
/// checks the result. `full` says whether the recorder stores floats at full precision.
fn round_trip<R: FileRecorder<B>>(recorder: R, name: &str, full: bool) {
    let device = Default::default();
    let scratch = Scratch::new(&format!("records-{name}"));
    let layer = saved_layer();
    let seeds = layer.seeds_packed().unwrap();
    assert!(
        seeds.iter().any(|s| {
            let (high, low) = ((s.hi >> 32) as u32 as i32, s.hi as u32 as i32);
            i16::try_from(high).is_err() || i16::try_from(low).is_err()
        }),
        "the test needs seeds whose hi halves do not fit i16"
    );
    // Read everything before cloning: Burn initialises a fresh layer's bias lazily, and a
    // clone of a not-yet-initialised parameter draws its own values (Burn 0.21's
    // `Param::clone`), so the clone would save another bias than `layer` has.
    let (u, v, b) = residual_and_bias(&layer);
    let want = output(&layer);
    let path = scratch.path("layer");
    layer.clone().save_file(&path, &recorder).unwrap();

    let fresh = config().init::<B>(&device);
    assert_ne!(
        fresh.seeds_packed().unwrap(),
        seeds,
        "the load must change something"
    );
    let loaded = load_checked(fresh, &path, &recorder, &device).unwrap();
    assert_eq!(
        loaded.seeds_packed().unwrap(),
        seeds,
        "{name}: seeds bit for bit"
    );

    let (lu, lv, lb) = residual_and_bias(&loaded);
    let got = output(&loaded);
    if full {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&lu), bits(&u), "{name}: residual U");
        assert_eq!(bits(&lv), bits(&v), "{name}: residual V");
        assert_eq!(bits(&lb), bits(&b), "{name}: bias");
        assert_eq!(bits(&got), bits(&want), "{name}: output");
        return;
    }
    for (what, saved, loaded) in [("U", &u, &lu), ("V", &v, &lv), ("bias", &b, &lb)] {
        let rounded: Vec<f32> = saved.iter().map(|&x| through_f16(x)).collect();
        assert_eq!(
            loaded, &rounded,
            "{name}: {what} is the f16 rounding of the saved one"
        );
    }
    // The seeds are exact, so the outputs differ only through the residual and the bias:
    //   y' - y = x (V'^T U'^T - V^T U^T) + (b' - b),
    //   |y'_no - y_no| <= sum_{q,k} |x_nk| (|U'_oq - U_oq| |V'_qk| + |U_oq| |V'_qk - V_qk|)
    //                     + |b'_o - b_o|,
    // with the differences the actual f16 roundings (each <= 2^-11 relative, checked above).
    // On top of that the two forward passes round differently in f32: the seed part is the
    // same computation on the same values, the residual matmuls sum D_IN and RANK products
    // (error <= ~30 * 2^-24 = 2e-6 of sum |x| |V| |U|) and the two additions round at |y|.
    // `1e-5 * (1 + |y| + sum |x| |V'| |U'|)` covers that five times over and is far below the
    // f16 effect, so a U, V or b off by more than its f16 rounding fails.
    let x = input();
    let mut worst = 0.0f64;
    for n in 0..BATCH {
        for o in 0..D_OUT {
            let mut bound = f64::from((lb[o] - b[o]).abs());
            let mut magnitude = 0.0;
            for q in 0..RANK {
                let uq = o * RANK + q;
                let du = f64::from((lu[uq] - u[uq]).abs());
                for k in 0..D_IN {
                    let vk = q * D_IN + k;
                    let dv = f64::from((lv[vk] - v[vk]).abs());
                    let xk = f64::from(x[n * D_IN + k].abs());
                    bound += xk * (du * f64::from(lv[vk].abs()) + f64::from(u[uq].abs()) * dv);
                    magnitude += xk * f64::from(lv[vk].abs()) * f64::from(lu[uq].abs());
                }
            }
            let i = n * D_OUT + o;
            let diff = f64::from((got[i] - want[i]).abs());
            let tol = bound + 1e-5 * (1.0 + f64::from(want[i].abs()) + magnitude);
            assert!(diff <= tol, "{name}: output {i} moved {diff:e} > {tol:e}");
            worst = worst.max(diff);
        }
    }
    eprintln!("{name}: seeds exact, output moved at most {worst:e} through f16 residual/bias");
}

#[test]
fn default_recorder_round_trips_exactly() {
    round_trip(DefaultRecorder::new(), "default", true);
}

#[test]
fn named_mpk_half_precision_recorder_keeps_seeds_exact() {
    round_trip(
        NamedMpkFileRecorder::<HalfPrecisionSettings>::new(),
        "named-mpk-half",
        false,
    );
}

#[test]
fn compact_recorder_keeps_seeds_exact() {
    round_trip(CompactRecorder::new(), "compact", false);
}

#[test]
fn bin_file_recorder_round_trips_exactly() {
    round_trip(BinFileRecorder::<FullPrecisionSettings>::new(), "bin", true);
}

#[test]
fn pretty_json_recorder_round_trips_exactly() {
    round_trip(
        PrettyJsonFileRecorder::<FullPrecisionSettings>::new(),
        "json",
        true,
    );
}

#[test]
fn rbe_recorder_round_trips_exactly() {
    round_trip(RbeRecorder::<FullPrecisionSettings>::new(), "rbe", true);
}

#[test]
fn rbe_recorder_at_half_precision_keeps_seeds_exact() {
    round_trip(
        RbeRecorder::<HalfPrecisionSettings>::new(),
        "rbe-half",
        false,
    );
}

/// Saves a layer of `saved` and loads it into one of `model`: a `RecordMismatch`, under the
/// default recorder and the checksummed one.
fn assert_mismatch(saved: RbeLinearConfig, model: RbeLinearConfig, name: &str) {
    fn check<R: FileRecorder<B>>(
        recorder: R,
        saved: &RbeLinearConfig,
        model: &RbeLinearConfig,
        path: PathBuf,
    ) {
        let device = Default::default();
        saved
            .init::<B>(&device)
            .save_file(&path, &recorder)
            .unwrap();
        let err = load_checked(model.init::<B>(&device), &path, &recorder, &device)
            .expect_err("the record does not fit the model");
        assert!(
            matches!(err, RbeError::RecordMismatch { .. }),
            "{saved:?} into {model:?}: {err}"
        );
        eprintln!("{}: {err}", path.display());
    }
    let scratch = Scratch::new(&format!("records-{name}"));
    check(
        DefaultRecorder::new(),
        &saved,
        &model,
        scratch.path("default"),
    );
    check(
        RbeRecorder::<FullPrecisionSettings>::new(),
        &saved,
        &model,
        scratch.path("rbe"),
    );
}

#[test]
fn a_record_with_another_block_grid_is_a_record_mismatch() {
    // 16x16 in 8x8 blocks and in 4x16 blocks: four seeds either way, so every parameter has
    // the same shape and only the layout tells them apart.
    let saved = RbeLinearConfig::new(16, 16).with_block_size(8);
    let model = RbeLinearConfig::new(16, 16).with_block(BlockShape::new(4, 16));
    let device = Default::default();
    assert_eq!(
        rbe::testing::param_shapes::<B, _>(&saved.init::<B>(&device)),
        rbe::testing::param_shapes::<B, _>(&model.init::<B>(&device)),
        "same parameter shapes"
    );
    assert_mismatch(saved, model, "grid");
}

#[test]
fn a_residual_on_one_side_only_is_a_record_mismatch() {
    let with = RbeLinearConfig::new(16, 12)
        .with_block_size(4)
        .with_residual_rank(2);
    let without = with.clone().with_residual_rank(0);
    assert_mismatch(with.clone(), without.clone(), "residual-dropped");
    assert_mismatch(without, with, "residual-added");
}

#[test]
fn a_bias_on_one_side_only_is_a_record_mismatch() {
    let with = RbeLinearConfig::new(16, 12).with_block_size(4);
    let without = with.clone().with_bias(false);
    assert_mismatch(with.clone(), without.clone(), "bias-dropped");
    assert_mismatch(without, with, "bias-added");
}

#[test]
fn a_fresh_layer_saved_through_a_clone_keeps_the_values_it_computes_with() {
    let device = Default::default();
    let scratch = Scratch::new("records-fresh-clone");
    let layer = config().init::<B>(&device);
    let path = scratch.path("fresh");
    // Nothing of `layer` has been read before the clone is saved.
    layer
        .clone()
        .save_file(&path, &DefaultRecorder::new())
        .unwrap();
    let loaded = load_checked(
        config().init::<B>(&device),
        &path,
        &DefaultRecorder::new(),
        &device,
    )
    .unwrap();
    assert_eq!(residual_and_bias(&loaded), residual_and_bias(&layer));
    assert_eq!(output(&loaded), output(&layer));
}

/// The fixtures of `tests/fixtures/records/`, written by rbe-burn 0.1.0 before seed formats
/// had types of their own (see the README there), under `RbeRecorder`, `CompactRecorder`
/// (half precision) and `BinFileRecorder`.
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/records")
        .join(name)
}

/// Records written by the previous version load into layers built with today's API: the
/// seeds bit for bit, the output as it was within f32 rounding (1e-6 here). Not exactly:
/// the CPU kernels have since changed their arithmetic, not the seeds (the paper format's
/// decode uses the crate's own vectorised `tanh` and `sin_cos` instead of libm's; the sign
/// blueprint's AVX-512 forward sums `2·alpha·x` over set bits plus `(mu - alpha)·x` in
/// another order), which moved outputs by an ulp or two. At half precision also within f16
/// rounding of residual and bias.
#[test]
fn records_of_the_previous_version_load() {
    let device = Default::default();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let x: Vec<f32> = serde_json::from_value(expected["input"]["values"].clone()).unwrap();
    let hex = |v: &serde_json::Value| {
        u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    let paper = RbeLinearConfig::new(20, 12)
        .with_block_size(8)
        .with_residual_rank(2);
    let sign = RbeLinearConfig::new(20, 12)
        .with_block_size(8)
        .with_format(SignFormat::new(BitTraining::StraightThrough).into());
    let cases: [(&str, &str, RbeLinearConfig, f32); 4] = [
        ("paper", "paper.rbe", paper.clone(), 1e-6),
        ("paper", "paper.bin", paper.clone(), 1e-6),
        // f16 residual and bias: |x| < 2, 20 inputs, rank 2.
        ("paper", "paper.mpk", paper, 5e-3),
        ("sign", "sign.rbe", sign, 1e-6),
    ];
    for (name, file, config, tolerance) in cases {
        let want = &expected[name];
        let layer = config.init::<B>(&device);
        let path = fixture(file);
        let loaded = match file.rsplit('.').next().unwrap() {
            "rbe" => load_checked(
                layer,
                &path,
                &RbeRecorder::<FullPrecisionSettings>::new(),
                &device,
            ),
            "bin" => load_checked(
                layer,
                &path,
                &BinFileRecorder::<FullPrecisionSettings>::new(),
                &device,
            ),
            _ => load_checked(layer, &path, &CompactRecorder::new(), &device),
        }
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let seeds: Vec<(u64, u64)> = loaded
            .seeds_packed()
            .unwrap()
            .iter()
            .map(|s| (s.hi, s.lo))
            .collect();
        let want_seeds: Vec<(u64, u64)> = want["seeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (hex(&s[0]), hex(&s[1])))
            .collect();
        assert_eq!(seeds, want_seeds, "{file}: seeds bit for bit");
        let y = values(loaded.forward(Tensor::<B, 2>::from_data(
            TensorData::new(x.clone(), [3, 20]),
            &device,
        )));
        let want_y: Vec<f32> = serde_json::from_value(want["output"].clone()).unwrap();
        let worst = y
            .iter()
            .zip(&want_y)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= tolerance,
            "{file}: output differs by {worst} (tolerance {tolerance})"
        );
    }
    // The format is part of the structure: a paper-format layer refuses the sign record.
    let wrong = RbeLinearConfig::new(20, 12)
        .with_block_size(8)
        .init::<B>(&device);
    let err = load_checked(
        wrong,
        fixture("sign.rbe"),
        &RbeRecorder::<FullPrecisionSettings>::new(),
        &device,
    )
    .unwrap_err();
    assert!(matches!(err, RbeError::RecordMismatch { .. }), "{err}");
}
