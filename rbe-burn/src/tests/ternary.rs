//! The ternary format through the module on every backend: forward and every gradient
//! against the f64 reference, the f16 constraint, straight-through training, records,
//! encoding and validation.

use burn::backend::Autodiff;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, Optimizer, SgdConfig};
use burn::record::{
    BinFileRecorder, CompactRecorder, DefaultRecorder, FullPrecisionSettings, HalfPrecisionSettings,
};
use rbe_kernels::KernelError;
use rbe_kernels::formats::sign::valid_mask;
use rbe_kernels::formats::ternary::{
    self, ALPHA_MAX, ALPHA_MIN, TERNARY_CELLS, TernaryParams, round_alpha,
};

use super::*;
use crate::{
    BitTraining, BlockShape, FormatId, RbeError, RbeLinear, RbeLinearConfig, RbeOptimizer,
    RbeRecorder, RbeSeedsItem, SeedFormat, SignFormat, TernaryFormat, load_checked,
};

fn ternary_format(training: BitTraining) -> SeedFormat {
    SeedFormat::Ternary(TernaryFormat::new(training))
}

fn config(layout: &BlockLayout, training: BitTraining) -> RbeLinearConfig {
    RbeLinearConfig::new(layout.cols, layout.rows)
        .with_bias(false)
        .with_block(BlockShape::new(layout.block_rows, layout.block_cols))
        .with_format(ternary_format(training))
}

/// Random ternary seeds with the cells outside the matrix at 0, as the encoder, the
/// initialiser and the straight-through rule leave them.
fn ternary_seeds(rng: &mut StdRng, layout: &BlockLayout) -> Vec<Packed128> {
    rbe_kernels::testing::TernarySeeds::random(rng, layout)
        .packed
        .into_iter()
        .enumerate()
        .map(|(s, seed)| {
            let (mut codes, alpha) = ternary::unpack(&seed).unwrap();
            let mask = valid_mask(layout, s);
            for (k, code) in codes.iter_mut().enumerate() {
                if mask >> k & 1 == 0 {
                    *code = 0;
                }
            }
            ternary::pack(&codes, alpha).unwrap()
        })
        .collect()
}

fn layouts() -> Vec<(BlockLayout, usize)> {
    [
        (17, 23, 8, 8, 3),
        (9, 70, 4, 16, 1),
        (33, 64, 2, 32, 6),
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

/// The latent weights' parameter id: the float parameter that is neither coords nor bits.
fn latent_id<B: Backend>(layer: &RbeLinear<B>) -> burn::module::ParamId {
    struct Ids(Vec<burn::module::ParamId>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    layer.visit(&mut ids);
    ids.0
        .into_iter()
        .find(|id| *id != layer.seeds.coords_id() && *id != layer.seeds.bits_id())
        .expect("the latent is a parameter")
}

fn check_against_reference<B: crate::RbeBackend>(device: &B::Device) {
    type Ad<B> = Autodiff<B>;
    let mut rng = rng(177);
    for (layout, batch) in layouts() {
        let seeds = ternary_seeds(&mut rng, &layout);
        let x = f32_exact(random_vec(&mut rng, batch * layout.cols));
        let u = f32_exact(random_vec(&mut rng, batch * layout.rows));
        let layer: RbeLinear<Ad<B>> = config(&layout, BitTraining::StraightThrough)
            .init_with_seeds(&seeds, device)
            .unwrap();
        assert_eq!(layer.seeds_packed().unwrap(), seeds, "upload is exact");
        assert_eq!(
            layer.seeds.bits().dims(),
            [layout.num_blocks(), ternary::TERNARY_BIT_WORDS]
        );

        let xt = tensor::<Ad<B>, 2>(&x, [batch, layout.cols], device).require_grad();
        let y = layer.forward(xt.clone());
        let want_y = ternary::reference::forward(&seeds, &layout, &x, batch).unwrap();
        let err = max_rel_err(&to_vec(y.clone()), &want_y);
        assert!(err < 1e-5, "{layout}: forward rel err {err}");
        let w = to_vec(layer.weight());
        let want_w = ternary::decode_dense(&seeds, &layout).unwrap();
        assert!(max_rel_err(&w, &want_w) == 0.0, "{layout}: decode");

        let loss = (y * tensor::<Ad<B>, 2>(&u, [batch, layout.rows], device)).sum();
        let grads = loss.backward();
        let want = ternary::reference::backward(&seeds, &layout, &x, &u, batch).unwrap();
        let gx = to_vec(xt.grad(&grads).unwrap());
        let err = max_rel_err(&gx, want.x.as_deref().unwrap());
        assert!(err < 1e-5, "{layout}: grad_x rel err {err}");
        let gc = to_vec(layer.seeds.coords().grad(&grads).unwrap());
        let err = max_rel_err(&gc, &want.coords);
        assert!(err < 1e-5, "{layout}: grad alpha rel err {err}");

        // The per-cell signal arrives on the latent weights.
        let params = GradientsParams::from_grads(grads, &layer);
        assert!(params.get::<B, 2>(layer.seeds.bits_id()).is_none());
        let signal = params
            .get::<B, 2>(latent_id(&layer))
            .expect("latent gradient");
        assert_eq!(signal.dims(), [layout.num_blocks(), TERNARY_CELLS]);
        let err = max_rel_err(&to_vec(signal), want.signal.as_deref().unwrap());
        assert!(err < 1e-5, "{layout}: cell signal rel err {err}");
    }
}

backend_tests!(ternary_layer_matches_reference, |B, device| {
    check_against_reference::<B>(device)
});

/// The constraint in tensor ops rounds `alpha` exactly as the stored f16 does, clamps it to
/// the normal f16 range and zeroes the unused column, on every backend (the fused WGPU
/// path included, where a contracted multiply-add would break the rounding).
fn check_constraint<B: crate::RbeBackend>(device: &B::Device) {
    let mut rng = rng(178);
    let n = 4096;
    let mut values: Vec<f64> = (0..n)
        .map(|_| {
            let e: f64 = rand::Rng::random_range(&mut rng, -16.0..17.0);
            let m: f64 = rand::Rng::random_range(&mut rng, 0.5..1.0);
            f64::from((2f64.powf(e) * m) as f32)
        })
        .collect();
    values.extend([0.0, -1.0, 1e-9, 1e9, 65504.0, 65519.0, 6.1e-5]);
    let coords: Vec<f64> = values.iter().flat_map(|&v| [v, 0.25]).collect();
    let rows = values.len();
    let t = tensor::<B, 2>(&coords, [rows, 2], device);
    let got = to_vec(ternary_format(BitTraining::StraightThrough).constrain(t));
    for (k, &v) in values.iter().enumerate() {
        let want = f64::from(round_alpha(v as f32));
        assert_eq!(got[2 * k], want, "alpha {v}");
        assert_eq!(got[2 * k + 1], 0.0);
        assert!((f64::from(ALPHA_MIN)..=f64::from(ALPHA_MAX)).contains(&got[2 * k]));
    }
}

backend_tests!(constraint_is_the_f16_rounding, |B, device| {
    check_constraint::<B>(device)
});

/// Straight-through: after an optimizer step every level is the nearest level of its
/// latent weight for the stored `alpha`, and a step with zero learning rate changes none.
fn check_straight_through_step<B: crate::RbeBackend>(device: &B::Device) {
    type Ad<B> = Autodiff<B>;
    let mut rng = rng(105);
    // Partial blocks (the packing masks cells outside) and whole 8x8 blocks (no mask).
    for layout in [
        BlockLayout::new(13, 21, 4, 8).unwrap(),
        BlockLayout::new(16, 24, 8, 8).unwrap(),
    ] {
        let seeds = ternary_seeds(&mut rng, &layout);
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
                let p = TernaryParams::try_from(seed).unwrap();
                let mask = valid_mask(&layout, s);
                for k in 0..TERNARY_CELLS {
                    let want = if mask >> k & 1 == 1 {
                        ternary::nearest_level(latent[s * TERNARY_CELLS + k], p.alpha)
                    } else {
                        0
                    };
                    assert_eq!(p.levels[k], want, "seed {s} cell {k}");
                }
            }
            let changed = before
                .iter()
                .zip(&after)
                .any(|(a, b)| ternary::unpack(a).unwrap().0 != ternary::unpack(b).unwrap().0);
            assert_eq!(
                changed, expect_change,
                "lr {lr}: levels changed = {changed}"
            );
        }
    }
}

backend_tests!(straight_through_levels_follow_the_latent, |B, device| {
    check_straight_through_step::<B>(device)
});

#[cfg(feature = "flex")]
#[test]
fn records_round_trip_under_every_recorder() {
    type Ad = Autodiff<Flex>;
    let device = Default::default();
    let layout = BlockLayout::new(23, 17, 8, 8).unwrap();
    let mut rng = rng(108);
    let seeds = ternary_seeds(&mut rng, &layout);
    let cfg = config(&layout, BitTraining::StraightThrough).with_bias(true);
    let dir = std::env::temp_dir().join(format!("rbe-ternary-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let layer = cfg.init_with_seeds::<Ad>(&seeds, &device).unwrap();
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
        assert_eq!(loaded.format().id(), FormatId::Ternary);
        // The fresh latent gives back the loaded levels.
        let latent = to_vec(loaded.seeds.latent().unwrap());
        for (s, seed) in seeds.iter().enumerate() {
            let p = TernaryParams::try_from(seed).unwrap();
            for k in 0..TERNARY_CELLS {
                assert_eq!(
                    ternary::nearest_level(latent[s * TERNARY_CELLS + k], p.alpha),
                    p.levels[k]
                );
            }
        }
        // A sign-blueprint layer of the same layout refuses the record.
        let sign = RbeLinearConfig::new(cfg.d_input, cfg.d_output)
            .with_block_size(8)
            .with_format(SignFormat::new(BitTraining::StraightThrough).into());
        let err = load_checked(
            sign.init::<Autodiff<Flex>>(&device),
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
        CompactRecorder::new(),
        dir.join("compact"),
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

/// Seeds standing alone (no layer header) save in their format and load back into seeds of
/// that format.
#[cfg(feature = "flex")]
#[test]
fn headerless_seeds_round_trip() {
    let device = Default::default();
    let layout = BlockLayout::new(9, 20, 8, 8).unwrap();
    let seeds = ternary_seeds(&mut rng(109), &layout);
    let format = ternary_format(BitTraining::Frozen);
    let module = crate::RbeSeeds::<Flex>::from_packed(&seeds, &layout, format, &device).unwrap();
    let item: RbeSeedsItem =
        burn::record::Record::into_item::<FullPrecisionSettings>(module.clone().into_record());
    assert_eq!(item.seeds, seeds);
    let json = serde_json::to_string(&item).unwrap();
    let item: RbeSeedsItem = serde_json::from_str(&json).unwrap();
    let record = <crate::RbeSeedsRecord<Flex> as burn::record::Record<Flex>>::from_item::<
        FullPrecisionSettings,
    >(item, &device);
    let fresh = crate::RbeSeeds::<Flex>::from_packed(
        &ternary_seeds(&mut rng(110), &layout),
        &layout,
        format,
        &device,
    )
    .unwrap();
    assert_eq!(fresh.load_record(record).to_packed().unwrap(), seeds);
}

/// A stored ternary seed with reserved bits set, or a base-3 value at or above 3^64, is a
/// typed error wherever it enters: a record (with a valid checksum) and a layer.
#[cfg(feature = "flex")]
#[test]
fn corrupted_ternary_seeds_are_typed_errors() {
    let device = Default::default();
    let layout = BlockLayout::new(8, 8, 8, 8).unwrap();
    let good = ternary_seeds(&mut rng(111), &layout)[0];
    let reserved = Packed128 {
        hi: good.hi | 1 << 63,
        ..good
    };
    let v = ternary::THREE_POW_64 | (u128::from(good.hi >> 38) << 102);
    let too_big = Packed128 {
        hi: (v >> 64) as u64,
        lo: v as u64,
    };
    let cfg = config(&layout, BitTraining::StraightThrough);
    for (bad, what) in [(reserved, "reserved"), (too_big, "3^64")] {
        let err = cfg.init_with_seeds::<Flex>(&[bad], &device).unwrap_err();
        assert!(
            matches!(
                err,
                RbeError::Seed(
                    KernelError::ReservedBits { .. } | KernelError::CodeOutOfRange { .. }
                )
            ),
            "{what}: {err}"
        );
        // A record holding it, with the checksum made to match, is refused on read.
        let layer = cfg.init_with_seeds::<Flex>(&[good], &device).unwrap();
        let mut item: RbeSeedsItem = burn::record::Record::into_item::<FullPrecisionSettings>(
            layer.seeds.clone().into_record(),
        );
        item.seeds = vec![bad];
        item.checksum = RbeSeedsItem::checksum_of(item.header.as_ref(), &item.seeds);
        // Saving refuses it too.
        assert!(serde_json::to_string(&item).is_err(), "{what}");
        let mut json: serde_json::Value = serde_json::from_str(
            &serde_json::to_string(&RbeSeedsItem {
                seeds: vec![good],
                checksum: RbeSeedsItem::checksum_of(item.header.as_ref(), &[good]),
                ..item.clone()
            })
            .unwrap(),
        )
        .unwrap();
        json["seeds"][0]["hi"] = bad.hi.into();
        json["seeds"][0]["lo"] = bad.lo.into();
        json["checksum"] = item.checksum.into();
        let err = serde_json::from_value::<RbeSeedsItem>(json).unwrap_err();
        assert!(err.to_string().contains("seed 0"), "{what}: {err}");
    }
    // A device code 11 cannot be saved.
    let layer = cfg.init_with_seeds::<Flex>(&[good], &device).unwrap();
    let bits = Tensor::<Flex, 2, Int>::from_data(TensorData::new(vec![-1i32; 4], [1, 4]), &device);
    let packed =
        crate::RbeSeedsRecord::<Flex>::packed(layer.seeds.coords(), bits, FormatId::Ternary);
    assert!(matches!(packed, Err(KernelError::InvalidCode { .. })));
}

/// `from_linear`: the least-squares ternary fit; it beats the sign blueprint's fit of the same
/// matrix at the same 8x8 blocks, and its reported error is that of the decoded weight.
#[cfg(feature = "flex")]
#[test]
fn from_linear_fits_better_than_sign() {
    use burn::nn::LinearConfig;
    let device = Default::default();
    let linear = LinearConfig::new(70, 45).init::<Flex>(&device);
    let layout = BlockLayout::new(45, 70, 8, 8).unwrap();
    let w = to_vec(linear.weight.val().transpose());
    let (want, _) = ternary::encode_dense(&w, &layout).unwrap();
    let base = RbeLinearConfig::new(70, 45).with_block_size(8);
    let ternary_cfg = base
        .clone()
        .with_format(ternary_format(BitTraining::StraightThrough));
    let sign_cfg = base.with_format(SignFormat::new(BitTraining::StraightThrough).into());
    let (layer, report) = RbeLinear::from_linear(&linear, &ternary_cfg).unwrap();
    let (_, sign_report) = RbeLinear::from_linear(&linear, &sign_cfg).unwrap();
    assert_eq!(layer.seeds_packed().unwrap(), want);
    if std::env::var_os("RBE_PRINT_ERRORS").is_some() {
        eprintln!(
            "from_linear 45x70, 8x8 blocks: sign {:.4}, ternary {:.4}",
            sign_report.seeds_rel_frobenius_error, report.seeds_rel_frobenius_error
        );
    }
    assert!(
        report.seeds_rel_frobenius_error < sign_report.seeds_rel_frobenius_error,
        "ternary {} vs sign {}",
        report.seeds_rel_frobenius_error,
        sign_report.seeds_rel_frobenius_error
    );
    let decoded = to_vec(layer.weight());
    let err = decoded
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt()
        / w.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(
        (err - report.seeds_rel_frobenius_error).abs() < 1e-6,
        "decoded {err} vs reported {}",
        report.seeds_rel_frobenius_error
    );
    assert_eq!(report.storage.seed_bytes, 16 * layout.num_blocks());
}

#[cfg(feature = "flex")]
#[test]
fn bad_ternary_inputs_are_typed_errors() {
    use burn::nn::LinearConfig;
    let device = Default::default();
    // Blocks over 64 cells.
    let cfg = RbeLinearConfig::new(32, 32)
        .with_block_size(16)
        .with_format(ternary_format(BitTraining::StraightThrough));
    assert!(matches!(
        cfg.validate(),
        Err(RbeError::Seed(KernelError::TooLarge { .. }))
    ));
    assert!(cfg.try_init::<Flex>(&device).is_err());
    // Bop flips are the sign blueprint's.
    let cfg = RbeLinearConfig::new(32, 32)
        .with_block_size(8)
        .with_format(ternary_format(BitTraining::Flip));
    assert!(matches!(cfg.validate(), Err(RbeError::Config(_))));
    // A NaN weight.
    let mut linear = LinearConfig::new(16, 8).init::<Flex>(&device);
    let mut w = to_vec(linear.weight.val());
    w[5] = f64::NAN;
    linear.weight = burn::module::Param::from_tensor(tensor::<Flex, 2>(&w, [16, 8], &device));
    let cfg = RbeLinearConfig::new(16, 8)
        .with_block_size(8)
        .with_format(ternary_format(BitTraining::StraightThrough));
    let err = RbeLinear::from_linear(&linear, &cfg).unwrap_err();
    assert!(matches!(err, RbeError::NonFinite(_)), "{err}");
    // The kernel crate's encoder, called directly, refuses it too.
    let layout = BlockLayout::new(8, 16, 8, 8).unwrap();
    assert!(matches!(
        ternary::encode_dense(&w, &layout),
        Err(KernelError::InvalidScale(_))
    ));
}

/// A few Adam steps through `RbeOptimizer` on a toy regression with a ternary target:
/// the loss falls and the levels move.
#[cfg(feature = "flex")]
#[test]
fn straight_through_training_lowers_the_loss() {
    type Ad = Autodiff<Flex>;
    let device = Default::default();
    let mut rng = rng(112);
    let layout = BlockLayout::new(16, 24, 8, 8).unwrap();
    let target = ternary_seeds(&mut rng, &layout);
    let w = ternary::decode_dense(&target, &layout).unwrap();
    let batch = 64;
    let x = f32_exact(random_vec(&mut rng, batch * layout.cols));
    let y: Vec<f64> = (0..batch)
        .flat_map(|n| {
            let (x, w) = (&x, &w);
            (0..layout.rows).map(move |o| {
                (0..layout.cols)
                    .map(|k| x[n * layout.cols + k] * w[o * layout.cols + k])
                    .sum()
            })
        })
        .collect();
    let xt = tensor::<Ad, 2>(&x, [batch, layout.cols], &device);
    let yt = tensor::<Ad, 2>(&y, [batch, layout.rows], &device);
    let mut layer: RbeLinear<Ad> = config(&layout, BitTraining::StraightThrough).init(&device);
    let start = layer.seeds_packed().unwrap();
    let mut optim = RbeOptimizer::new(AdamConfig::new().init());
    let loss_of = |layer: &RbeLinear<Ad>| {
        (layer.forward(xt.clone()) - yt.clone())
            .powi_scalar(2)
            .mean()
    };
    let first = to_vec(loss_of(&layer))[0];
    for _ in 0..30 {
        let loss = loss_of(&layer);
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        layer = optim.step(0.02, layer, grads);
    }
    let last = to_vec(loss_of(&layer))[0];
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    let end = layer.seeds_packed().unwrap();
    assert!(
        start
            .iter()
            .zip(&end)
            .any(|(a, b)| ternary::unpack(a).unwrap().0 != ternary::unpack(b).unwrap().0),
        "levels changed"
    );
}
