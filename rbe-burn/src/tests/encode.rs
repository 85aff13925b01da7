//! `RbeLinear::from_linear`.

use burn::nn::LinearConfig;
use burn::tensor::Tensor;

use super::*;
use crate::{RbeError, RbeLinear, RbeLinearConfig};

fn check_full_rank<B: crate::RbeBackend>(device: &B::Device) {
    for (d_in, d_out, block) in [(24, 16, 8), (37, 21, 5), (64, 64, 32)] {
        B::seed(device, 5);
        let dense = LinearConfig::new(d_in, d_out).init::<B>(device);
        let config = RbeLinearConfig::new(d_in, d_out)
            .with_block_size(block)
            .with_residual_rank(d_in.min(d_out));
        let (layer, report) = RbeLinear::from_linear(&dense, &config).unwrap();
        assert!(report.rel_frobenius_error < 1e-5, "{report:?}");
        let x = Tensor::<B, 2>::random([7, d_in], burn::tensor::Distribution::Default, device);
        let want = to_vec(dense.forward(x.clone()));
        let got = to_vec(layer.forward(x));
        let err = max_rel_err(&got, &want);
        assert!(
            err < 1e-4,
            "{d_out}x{d_in}/{block}: forward relative error {err:e}"
        );
        assert_eq!(report.storage, layer.storage());
    }
}

backend_tests!(
    full_rank_encoding_reproduces_the_dense_layer,
    |B, device| { check_full_rank::<B>(device) }
);

#[cfg(feature = "ndarray")]
#[test]
fn seeds_alone_recover_an_rbe_matrix() {
    // A dense layer whose weight is exactly what some seeds generate: the fit finds it.
    let device = Default::default();
    let mut rng = rng(51);
    let config = RbeLinearConfig::new(40, 24)
        .with_block_size(8)
        .with_bias(false);
    let seeds = random_seeds(&mut rng, config.layout().unwrap().num_blocks());
    let source = config.init_with_seeds::<NdArray>(&seeds, &device).unwrap();
    let mut dense = LinearConfig::new(40, 24)
        .with_bias(false)
        .init::<NdArray>(&device);
    dense.weight = burn::module::Param::from_tensor(source.weight().transpose());
    let (_, report) = RbeLinear::from_linear(&dense, &config).unwrap();
    assert!(report.seeds_rel_frobenius_error < 1e-5, "{report:?}");
    assert_eq!(report.seeds_at_radius_min + report.seeds_at_radius_max, 0);
}

#[cfg(feature = "ndarray")]
#[test]
fn rank_zero_error_is_reported_honestly() {
    let device = Default::default();
    NdArray::seed(&device, 3);
    let dense = LinearConfig::new(64, 32).init::<NdArray>(&device);
    let config = RbeLinearConfig::new(64, 32).with_block_size(8);
    let (layer, report) = RbeLinear::from_linear(&dense, &config).unwrap();
    // A random dense matrix has no block structure: the seeds miss most of it.
    assert!(report.rel_frobenius_error > 0.5, "{report:?}");
    assert_eq!(report.rel_frobenius_error, report.seeds_rel_frobenius_error);
    let w = to_vec(dense.weight.val().transpose());
    let got = to_vec(layer.weight());
    let diff: f64 = w
        .iter()
        .zip(&got)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = w.iter().map(|a| a * a).sum::<f64>().sqrt();
    assert!(
        (diff / norm - report.rel_frobenius_error).abs() < 1e-4,
        "report matches the layer"
    );
}

#[cfg(feature = "ndarray")]
#[test]
fn mismatched_linear_is_a_typed_error() {
    let device = Default::default();
    let dense = LinearConfig::new(10, 6).init::<NdArray>(&device);
    let err = RbeLinear::from_linear(&dense, &RbeLinearConfig::new(6, 10)).unwrap_err();
    assert!(matches!(err, RbeError::Shape { .. }), "{err}");
    let err =
        RbeLinear::from_linear(&dense, &RbeLinearConfig::new(10, 6).with_bias(false)).unwrap_err();
    assert!(matches!(err, RbeError::Config(_)), "{err}");
}
