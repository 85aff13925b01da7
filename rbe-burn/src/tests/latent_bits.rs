//! The straight-through bits on every backend: the backend's native pass
//! (`RbeBackend::rbe_bits_from_latent`, what a forward runs after an update) against the
//! format's tensor-op rule (what a record or `valid()` reads) and the reference rule, bit for
//! bit; and a layer's forward after an update against the same layer rebuilt from its saved
//! seeds.

use burn::backend::Autodiff;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{Int, TensorData};
use rbe_kernels::testing::{Blocks, LatentCase, cases as shape_cases};

use super::*;
use crate::{
    BitTraining, BlockShape, RbeBackend, RbeLinear, RbeLinearConfig, RbeOptimizer, RbeSpec,
    SeedFormat, SignFormat, TernaryFormat,
};

fn formats() -> [SeedFormat; 2] {
    [
        SeedFormat::SignBlueprint(SignFormat::new(BitTraining::StraightThrough)),
        SeedFormat::Ternary(TernaryFormat::new(BitTraining::StraightThrough)),
    ]
}

fn ints<B: Backend>(t: Tensor<B, 2, Int>) -> Vec<i32> {
    t.into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .unwrap()
        .into_iter()
        .map(|v| v as i32)
        .collect()
}

/// The named shapes and 8 random ones, cropped edge blocks included, each format. (The
/// kernels behind the native pass meet the reference on 30 more random shapes in
/// `rbe_kernels`; here each shape also compiles the tensor-op rule, slow on lavapipe.)
fn check_native_pass<B: RbeBackend>(device: &B::Device) {
    let mut rng = rng(41);
    for (layout, _) in shape_cases(&mut rng, Blocks::AtMost64, 8, 1) {
        let case = LatentCase::random(&mut rng, &layout);
        let n = layout.num_blocks();
        for format in formats() {
            let latent =
                Tensor::<B, 2>::from_data(TensorData::new(case.latent.clone(), [n, 64]), device);
            let coords =
                Tensor::<B, 2>::from_data(TensorData::new(case.coords.clone(), [n, 2]), device);
            let spec = RbeSpec {
                layout,
                format,
                signal: true,
                cache: Default::default(),
            };
            let native = Tensor::<B, 2, Int>::from_primitive(B::rbe_bits_from_latent(
                latent.clone().into_primitive().tensor(),
                coords.clone().into_primitive().tensor(),
                &spec,
            ));
            let rule = format.bits_from_latent(latent, coords, &layout);
            let want = match format {
                SeedFormat::Ternary(_) => case.ternary_bits(&layout),
                _ => case.sign_bits(&layout),
            };
            let what = format!("{:?} {layout}", format.id());
            assert_eq!(ints(native), want, "native pass, {what}");
            assert_eq!(ints(rule), want, "tensor-op rule, {what}");
        }
    }
}

backend_tests!(native_pass_matches_the_rule, |B, device| {
    check_native_pass::<B>(device)
});

/// After optimizer steps that flip bits, the layer's forward (bits from the native pass)
/// equals the forward of a layer built from its saved seeds (bits from the tensor-op rule),
/// and a forward reads no stale bits: its output changes with the update.
fn check_forward_after_update<B: RbeBackend>(device: &B::Device) {
    type Ad<B> = Autodiff<B>;
    let mut rng = rng(43);
    let layout = BlockLayout::new(13, 21, 4, 8).unwrap();
    for format in formats() {
        let config = RbeLinearConfig::new(layout.cols, layout.rows)
            .with_block(BlockShape::new(layout.block_rows, layout.block_cols))
            .with_format(format)
            .with_bias(false);
        let mut layer: RbeLinear<Ad<B>> = config.init(device);
        let mut optim = RbeOptimizer::new(SgdConfig::new().init());
        let x = tensor::<Ad<B>, 2>(
            &random_vec(&mut rng, 5 * layout.cols),
            [5, layout.cols],
            device,
        );
        for _ in 0..3 {
            let before = to_vec(layer.forward(x.clone()));
            // A target far from the small initial outputs, so that every step moves levels.
            let loss = (layer.forward(x.clone()) - 1.0).powi_scalar(2).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optim.step(2.0, layer, grads);
            let y = to_vec(layer.forward(x.clone()));
            assert_ne!(
                y,
                before,
                "{:?}: the update reached the forward",
                format.id()
            );
            let saved = layer.seeds_packed().unwrap();
            let rebuilt: RbeLinear<B> = config.init_with_seeds(&saved, device).unwrap();
            let want = to_vec(rebuilt.forward(x.clone().inner()));
            assert_eq!(
                y,
                want,
                "{:?}: native bits against the saved seeds",
                format.id()
            );
        }
    }
}

backend_tests!(forward_after_update_uses_the_updated_bits, |B, device| {
    check_forward_after_update::<B>(device)
});
