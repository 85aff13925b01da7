//! A step that makes parameters non-finite is refused, detected, and never saved.

use burn::backend::Autodiff;
use burn::module::Module;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::record::{CompactRecorder, DefaultRecorder};

use super::*;
use crate::{RbeBackend, RbeError, RbeLinear, RbeLinearConfig, RbeOptimizer, check_finite};

/// A layer and the gradients of a loss so steep that one SGD step at `lr = 1e38` overflows
/// `theta` and the bias.
fn layer_and_steep_grads<B: RbeBackend>(
    device: &B::Device,
) -> (RbeLinear<Autodiff<B>>, GradientsParams) {
    let mut rng = rng(97);
    let config = RbeLinearConfig::new(8, 8).with_block_size(4);
    let seeds = random_seeds(&mut rng, config.layout().unwrap().num_blocks());
    let layer = config
        .init_with_seeds::<Autodiff<B>>(&seeds, device)
        .unwrap();
    let x = tensor::<Autodiff<B>, 2>(&random_vec(&mut rng, 3 * 8), [3, 8], device);
    let loss = layer.forward(x).sum().mul_scalar(1e30);
    let grads = GradientsParams::from_grads(loss.backward(), &layer);
    (layer, grads)
}

fn check_step_refused<B: RbeBackend>(device: &B::Device) {
    let (layer, grads) = layer_and_steep_grads::<B>(device);
    let before = layer.seeds_packed().unwrap();
    let mut optim = RbeOptimizer::new(SgdConfig::new().init());
    let after = optim.step(1e38, layer, grads);
    assert!(matches!(
        optim.take_rejected(),
        Some(RbeError::NonFinite(_))
    ));
    assert!(optim.take_rejected().is_none(), "reported once");
    assert_eq!(
        after.seeds_packed().unwrap(),
        before,
        "module left unchanged"
    );
    check_finite(&after).unwrap();
}

fn check_not_saved<B: RbeBackend>(device: &B::Device) {
    let (layer, grads) = layer_and_steep_grads::<B>(device);
    let mut plain = SgdConfig::new().init();
    let diverged = plain.step(1e38, layer, grads);
    assert!(matches!(
        check_finite(&diverged),
        Err(RbeError::NonFinite(_))
    ));
    assert!(diverged.seeds_packed().is_err());
    let dir = std::env::temp_dir().join(format!("rbe-nonfinite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let full = diverged
        .clone()
        .save_file(dir.join("full"), &DefaultRecorder::new());
    assert!(full.is_err(), "full precision saved non-finite seeds");
    let half = diverged.save_file(dir.join("half"), &CompactRecorder::new());
    assert!(half.is_err(), "half precision saved non-finite seeds");
    std::fs::remove_dir_all(&dir).ok();
}

backend_tests!(
    non_finite_step_is_refused,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_step_refused::<B>(device) }
);

backend_tests!(non_finite_model_is_not_saved, [flex], |B, device| {
    check_not_saved::<B>(device)
});

/// Finite values whose sum overflows are finite (the quick test by the sum falls back to the
/// element-wise one), and a single NaN or infinity among them is found and named.
fn check_finite_finds_each_bad_value<B: RbeBackend>(device: &B::Device) {
    #[derive(Module, Debug)]
    struct Two<B: burn::tensor::backend::Backend> {
        small: burn::module::Param<Tensor<B, 1>>,
        huge: burn::module::Param<Tensor<B, 2>>,
    }
    let two = |huge: [f64; 4]| Two::<B> {
        small: burn::module::Param::from_tensor(tensor::<B, 1>(&[1.0, -2.0], [2], device)),
        huge: burn::module::Param::from_tensor(tensor::<B, 2>(&huge, [2, 2], device)),
    };
    let max = f64::from(f32::MAX);
    check_finite(&two([max, max, max, 1.0])).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        match check_finite(&two([max, bad, 0.0, 1.0])) {
            Err(RbeError::NonFinite(path)) => assert_eq!(path, "huge", "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

backend_tests!(
    finite_check_by_sum_falls_back_exactly,
    [ndarray, flex, wgpu_fusion],
    |B, device| { check_finite_finds_each_bad_value::<B>(device) }
);
