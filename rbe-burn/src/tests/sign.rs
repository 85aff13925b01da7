//! The sign-blueprint format through the module on every backend: forward and every gradient
//! against the f64 reference, both bit-training rules, records and validation.

use burn::backend::Autodiff;
use burn::module::Module;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::record::{
    BinFileRecorder, DefaultRecorder, FullPrecisionSettings, HalfPrecisionSettings,
};
use rbe_kernels::formats::sign::{
    self as sign_blueprint, BopConfig, SIGN_CELLS, SignBlueprint, valid_mask,
};

use super::*;
use crate::{
    BitFlips, BitTraining, BlockShape, FormatId, RbeError, RbeLinear, RbeLinearConfig,
    RbeOptimizer, RbeRecorder, SeedFormat, SignFormat, apply_state_transitions_with, load_checked,
};

fn sign(training: BitTraining) -> SeedFormat {
    SeedFormat::SignBlueprint(SignFormat::new(training))
}

fn config(layout: &BlockLayout, training: BitTraining) -> RbeLinearConfig {
    RbeLinearConfig::new(layout.cols, layout.rows)
        .with_bias(false)
        .with_block(BlockShape::new(layout.block_rows, layout.block_cols))
        .with_format(sign(training))
}

/// Random sign seeds ([`rbe_kernels::testing::SignSeeds::random_positive`]: `alpha` in
/// `[0.1, 1)`, `mu` in `±1`) with the bits of cells outside the matrix cleared, as the
/// layer's encoder and bit rules leave them.
fn sign_seeds(rng: &mut StdRng, layout: &BlockLayout) -> Vec<Packed128> {
    rbe_kernels::testing::SignSeeds::random_positive(rng, layout)
        .packed
        .into_iter()
        .enumerate()
        .map(|(s, seed)| Packed128 {
            hi: seed.hi & valid_mask(layout, s),
            ..seed
        })
        .collect()
}

/// Layouts with odd sizes, cropped edge blocks and non-square blocks of at most 64 cells.
fn layouts() -> Vec<(BlockLayout, usize)> {
    [
        (17, 23, 8, 8, 3),
        (9, 70, 4, 16, 1),
        (33, 64, 2, 32, 5),
        (5, 130, 1, 64, 2),
        (31, 29, 3, 5, 4),
    ]
    .into_iter()
    .map(|(rows, cols, br, bc, batch)| (BlockLayout::new(rows, cols, br, bc).unwrap(), batch))
    .collect()
}

fn f32_exact(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|v| f64::from(v as f32)).collect()
}

fn check_against_reference<B: crate::RbeBackend>(device: &B::Device, training: BitTraining) {
    type Ad<B> = Autodiff<B>;
    let mut rng = rng(77);
    for (layout, batch) in layouts() {
        let seeds = sign_seeds(&mut rng, &layout);
        let x = f32_exact(random_vec(&mut rng, batch * layout.cols));
        let u = f32_exact(random_vec(&mut rng, batch * layout.rows));
        let layer: RbeLinear<Ad<B>> = config(&layout, training)
            .init_with_seeds(&seeds, device)
            .unwrap();
        assert_eq!(layer.seeds_packed().unwrap(), seeds, "upload is exact");

        let xt = tensor::<Ad<B>, 2>(&x, [batch, layout.cols], device).require_grad();
        let y = layer.forward(xt.clone());
        let want_y = sign_blueprint::reference::forward(&seeds, &layout, &x, batch).unwrap();
        let err = max_rel_err(&to_vec(y.clone()), &want_y);
        assert!(err < 1e-5, "{layout}: forward rel err {err}");

        let loss = (y * tensor::<Ad<B>, 2>(&u, [batch, layout.rows], device)).sum();
        let grads = loss.backward();
        let want = sign_blueprint::reference::backward(&seeds, &layout, &x, &u, batch).unwrap();
        let gx = to_vec(xt.grad(&grads).unwrap());
        let err = max_rel_err(&gx, want.x.as_deref().unwrap());
        assert!(err < 1e-5, "{layout}: grad_x rel err {err}");
        let gc = to_vec(layer.seeds.coords().grad(&grads).unwrap());
        let err = max_rel_err(&gc, &want.coords);
        assert!(err < 1e-5, "{layout}: grad (alpha, mu) rel err {err}");

        // The per-cell signal arrives on the latent (straight-through) or the probe (flips).
        let params = GradientsParams::from_grads(grads, &layer);
        let signal = match training {
            BitTraining::StraightThrough => {
                let latent = layer.seeds.latent().expect("autodiff layers keep a latent");
                assert!(params.get::<B, 2>(layer.seeds.bits_id()).is_none());
                let ids = visit_float_ids(&layer);
                let id = ids
                    .into_iter()
                    .find(|id| *id != layer.seeds.coords_id() && *id != layer.seeds.bits_id())
                    .expect("the latent is a parameter");
                let _ = latent;
                params.get::<B, 2>(id).expect("latent gradient")
            }
            BitTraining::Flip => params
                .get::<B, 2>(layer.seeds.bits_id())
                .expect("signal filed under the bits"),
            BitTraining::Frozen => {
                assert!(params.get::<B, 2>(layer.seeds.bits_id()).is_none());
                assert!(layer.seeds.latent().is_none());
                continue;
            }
        };
        assert_eq!(signal.dims(), [layout.num_blocks(), SIGN_CELLS]);
        let want_s = want.signal.as_deref().unwrap();
        let err = max_rel_err(&to_vec(signal), want_s);
        assert!(err < 1e-5, "{layout}: cell signal rel err {err}");
    }
}

/// The reference's flat per-cell signal as one array per seed.
fn cells(grads: &rbe_kernels::Grads<Vec<f64>>) -> Vec<[f64; SIGN_CELLS]> {
    grads
        .signal
        .as_deref()
        .unwrap()
        .chunks_exact(SIGN_CELLS)
        .map(|c| c.try_into().unwrap())
        .collect()
}

/// Ids of the float parameters a visitor sees.
fn visit_float_ids<B: Backend, M: Module<B>>(module: &M) -> Vec<burn::module::ParamId> {
    struct Ids(Vec<burn::module::ParamId>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
}

backend_tests!(
    sign_layer_matches_reference_straight_through,
    |B, device| { check_against_reference::<B>(device, BitTraining::StraightThrough) }
);

backend_tests!(sign_layer_matches_reference_flip, |B, device| {
    check_against_reference::<B>(device, BitTraining::Flip)
});

/// Straight-through: after an optimizer step every bit is `latent >= mu`, alpha stays >= 0,
/// and a step with no gradient (zero learning rate) changes no bit.
fn check_straight_through_step<B: crate::RbeBackend>(device: &B::Device) {
    type Ad<B> = Autodiff<B>;
    let mut rng = rng(5);
    // Partial blocks (the packing masks cells outside) and whole 8x8 blocks (no mask).
    for layout in [
        BlockLayout::new(13, 21, 4, 8).unwrap(),
        BlockLayout::new(16, 24, 8, 8).unwrap(),
    ] {
        let seeds = sign_seeds(&mut rng, &layout);
        let mut layer: RbeLinear<Ad<B>> = config(&layout, BitTraining::StraightThrough)
            .init_with_seeds(&seeds, device)
            .unwrap();
        let mut optim = RbeOptimizer::new(SgdConfig::new().init());
        let x = tensor::<Ad<B>, 2>(
            &random_vec(&mut rng, 6 * layout.cols),
            [6, layout.cols],
            device,
        );
        for (lr, expect_change) in [(0.0, false), (5.0, true)] {
            let before = layer.seeds_packed().unwrap();
            let loss = layer.forward(x.clone()).powi_scalar(2).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optim.step(lr, layer, grads);
            let after = layer.seeds_packed().unwrap();
            let latent = to_vec(layer.seeds.latent().unwrap());
            for (s, seed) in after.iter().enumerate() {
                assert!(seed.alpha() >= 0.0);
                let mask = valid_mask(&layout, s);
                for k in 0..SIGN_CELLS {
                    let want =
                        mask >> k & 1 == 1 && latent[s * SIGN_CELLS + k] >= f64::from(seed.mu());
                    assert_eq!(seed.sign_bits() >> k & 1 == 1, want, "seed {s} cell {k}");
                }
            }
            let changed = before
                .iter()
                .zip(&after)
                .any(|(a, b)| a.sign_bits() != b.sign_bits());
            assert_eq!(changed, expect_change, "lr {lr}: bits changed = {changed}");
        }
    }
}

backend_tests!(straight_through_bits_follow_the_latent, |B, device| {
    check_straight_through_step::<B>(device)
});

/// Flips: the bits move exactly as the reference Bop rule says, given the signal the
/// backward pass produced, and the averages persist across steps.
fn check_flip_step<B: crate::RbeBackend>(device: &B::Device) {
    type Ad<B> = Autodiff<B>;
    let mut rng = rng(6);
    let layout = BlockLayout::new(11, 19, 8, 8).unwrap();
    let mut seeds = sign_seeds(&mut rng, &layout);
    let layer: RbeLinear<Ad<B>> = config(&layout, BitTraining::Flip)
        .init_with_seeds(&seeds, device)
        .unwrap();
    let bop = BopConfig {
        gamma: 0.5,
        tau: 1e-3,
    };
    let mut flips = BitFlips::new(bop).unwrap();
    let mut momentum = vec![[0.0; SIGN_CELLS]; seeds.len()];
    let mut layer = layer;
    let mut total = 0;
    for step in 0..3 {
        let x = f32_exact(random_vec(&mut rng, 4 * 19));
        let u = f32_exact(random_vec(&mut rng, 4 * 11));
        let y = layer.forward(tensor::<Ad<B>, 2>(&x, [4, 19], device));
        let loss = (y * tensor::<Ad<B>, 2>(&u, [4, 11], device)).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = apply_state_transitions_with(layer, &mut grads, &mut flips);
        let want = sign_blueprint::reference::backward(&seeds, &layout, &x, &u, 4).unwrap();
        total += sign_blueprint::bop_step(&mut seeds, &mut momentum, &cells(&want), &layout, bop)
            .unwrap();
        let got = layer.seeds_packed().unwrap();
        assert_eq!(
            got, seeds,
            "step {step}: bits as the reference rule moves them"
        );
    }
    assert_eq!(flips.take_flipped(), total);
    assert!(total > 0, "the test must exercise flips");
}

backend_tests!(flips_follow_the_reference_rule, |B, device| {
    check_flip_step::<B>(device)
});

#[cfg(feature = "flex")]
#[test]
fn records_round_trip_under_every_recorder() {
    type B = Flex;
    let device = Default::default();
    let layout = BlockLayout::new(23, 17, 8, 8).unwrap();
    let mut rng = rng(8);
    let seeds = sign_seeds(&mut rng, &layout);
    let cfg = config(&layout, BitTraining::StraightThrough).with_bias(true);
    let dir = std::env::temp_dir().join(format!("rbe-sign-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let layer = cfg.init_with_seeds::<Autodiff<B>>(&seeds, &device).unwrap();
    fn check<R: burn::record::FileRecorder<Autodiff<Flex>>>(
        layer: &RbeLinear<Autodiff<Flex>>,
        cfg: &RbeLinearConfig,
        recorder: R,
        path: std::path::PathBuf,
        seeds: &[Packed128],
    ) {
        let device = Default::default();
        layer.clone().save_file(&path, &recorder).unwrap();
        let loaded = load_checked(
            cfg.init::<Autodiff<Flex>>(&device),
            &path,
            &recorder,
            &device,
        )
        .unwrap();
        assert_eq!(loaded.seeds_packed().unwrap(), seeds, "{}", path.display());
        assert_eq!(loaded.format().id(), FormatId::SignBlueprint);
        // The fresh latent follows the loaded bits, so an update keeps them.
        let latent = to_vec(loaded.seeds.latent().unwrap());
        for (s, seed) in seeds.iter().enumerate() {
            for k in 0..SIGN_CELLS {
                if seed.sign_bits() >> k & 1 == 1 {
                    assert!(latent[s * SIGN_CELLS + k] >= f64::from(seed.mu()));
                }
            }
        }
        // A paper-format layer of the same layout refuses the record.
        let paper = RbeLinearConfig::new(cfg.d_input, cfg.d_output).with_block_size(8);
        let err = load_checked(
            paper.init::<Autodiff<Flex>>(&device),
            &path,
            &recorder,
            &device,
        )
        .unwrap_err();
        assert!(matches!(err, RbeError::RecordMismatch { .. }), "{err}");
    }
    check(
        &layer,
        &cfg,
        DefaultRecorder::new(),
        dir.join("default"),
        &seeds,
    );
    check(
        &layer,
        &cfg,
        RbeRecorder::<FullPrecisionSettings>::new(),
        dir.join("full.rbe"),
        &seeds,
    );
    check(
        &layer,
        &cfg,
        RbeRecorder::<HalfPrecisionSettings>::new(),
        dir.join("half.rbe"),
        &seeds,
    );
    check(
        &layer,
        &cfg,
        BinFileRecorder::<HalfPrecisionSettings>::new(),
        dir.join("half.bin"),
        &seeds,
    );
}

#[cfg(feature = "flex")]
#[test]
fn bad_sign_configs_and_seeds_are_typed_errors() {
    let device = Default::default();
    let cfg = RbeLinearConfig::new(32, 32)
        .with_block_size(16)
        .with_format(sign(BitTraining::StraightThrough));
    assert!(matches!(
        cfg.validate(),
        Err(RbeError::Seed(rbe_kernels::KernelError::TooLarge { .. }))
    ));
    assert!(cfg.try_init::<Flex>(&device).is_err());
    let layout = BlockLayout::new(8, 8, 8, 8).unwrap();
    let cfg = config(&layout, BitTraining::Flip);
    for bad in [
        Packed128::from_parts_unchecked(0, f32::NAN, 0.0),
        Packed128::from_parts_unchecked(0, 0.5, f32::INFINITY),
        Packed128::from_parts_unchecked(0, -0.5, 0.0),
    ] {
        assert!(cfg.init_with_seeds::<Flex>(&[bad], &device).is_err());
    }
    assert!(matches!(
        crate::BitFlips::new(BopConfig {
            gamma: 0.0,
            tau: 0.0
        }),
        Err(RbeError::Config(_))
    ));
}

/// `from_linear` is the closed-form fit of the reference encoder.
#[cfg(feature = "flex")]
#[test]
fn from_linear_matches_the_reference_encoder() {
    use burn::nn::LinearConfig;
    let device = Default::default();
    let linear = LinearConfig::new(37, 21).init::<Flex>(&device);
    let layout = BlockLayout::new(21, 37, 8, 8).unwrap();
    let w = to_vec(linear.weight.val().transpose());
    let (want, _) =
        sign_blueprint::encode_dense(&w, &layout, sign_blueprint::SignFit::Moments).unwrap();
    let cfg = RbeLinearConfig::new(37, 21)
        .with_block_size(8)
        .with_format(sign(BitTraining::StraightThrough));
    let (layer, report) = RbeLinear::from_linear(&linear, &cfg).unwrap();
    assert_eq!(layer.seeds_packed().unwrap(), want);
    assert!(report.seeds_rel_frobenius_error < 0.9);
    assert_eq!(report.storage.seed_bytes, 16 * layout.num_blocks());
}

/// Frozen bits: only `alpha` and `mu` move, and no signal is computed for the bits.
#[cfg(feature = "flex")]
#[test]
fn frozen_bits_stay_while_alpha_and_mu_train() {
    type Ad = Autodiff<Flex>;
    let device = Default::default();
    let mut rng = rng(91);
    let layout = BlockLayout::new(12, 20, 8, 8).unwrap();
    let seeds = sign_seeds(&mut rng, &layout);
    let layer: RbeLinear<Ad> = config(&layout, BitTraining::Frozen)
        .init_with_seeds(&seeds, &device)
        .unwrap();
    assert!(!layer.spec().signal, "frozen bits need no signal");
    let x = f32_exact(random_vec(&mut rng, 3 * 20));
    let loss = layer.forward(tensor::<Ad, 2>(&x, [3, 20], &device)).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &layer);
    let mut optim = RbeOptimizer::new(SgdConfig::new().init());
    let stepped = optim.step(0.1, layer, grads).seeds_packed().unwrap();
    for (before, after) in seeds.iter().zip(&stepped) {
        assert_eq!(before.hi, after.hi, "bits unchanged");
    }
    assert!(
        seeds.iter().zip(&stepped).any(|(b, a)| b.lo != a.lo),
        "alpha and mu trained"
    );
}
