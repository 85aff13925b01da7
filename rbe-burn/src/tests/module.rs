//! `RbeLinear` as a module: forward, storage, configuration and shape errors.

use burn::tensor::Tensor;
use rbe_kernels::formats::paper::reference::decode_dense;

use super::*;
use crate::{PaperFormat as paper_format, RbeBackend, RbeError, RbeLinearConfig};

fn paper() -> paper_format {
    paper_format::new()
}

/// `y = x W^T + x V^T U^T + b` with `W` decoded by the f64 reference.
fn check_forward<B: RbeBackend>(device: &B::Device) {
    let mut rng = rng(31);
    for (d_in, d_out, block, rank, batch) in
        [(19, 11, 4, 3, 2), (40, 24, 8, 0, 3), (5, 30, 16, 5, 1)]
    {
        let config = RbeLinearConfig::new(d_in, d_out)
            .with_block_size(block)
            .with_residual_rank(rank);
        let layout = config.layout().unwrap();
        let seeds = random_seeds(&mut rng, layout.num_blocks());
        let layer = config.init_with_seeds::<B>(&seeds, device).unwrap();
        let mut w = decode_dense(&params(&seeds), &layout).unwrap();
        if let Some(res) = &layer.residual {
            let (u, v) = (to_vec(res.u.val()), to_vec(res.v.val()));
            for o in 0..d_out {
                for k in 0..d_in {
                    w[o * d_in + k] += (0..rank)
                        .map(|q| u[o * rank + q] * v[q * d_in + k])
                        .sum::<f64>();
                }
            }
        }
        let b = to_vec(layer.bias.as_ref().unwrap().val());
        let x: Vec<f64> = random_vec(&mut rng, batch * 2 * d_in)
            .into_iter()
            .map(|v| f64::from(v as f32))
            .collect();
        // A rank-3 input exercises the `[..., d_input]` flattening.
        let y = layer.forward(tensor::<B, 3>(&x, [batch, 2, d_in], device));
        assert_eq!(y.dims(), [batch, 2, d_out]);
        let want: Vec<f64> = (0..batch * 2)
            .flat_map(|n| {
                let (x, w, b) = (&x, &w, &b);
                (0..d_out).map(move |o| {
                    b[o] + (0..d_in)
                        .map(|k| x[n * d_in + k] * w[o * d_in + k])
                        .sum::<f64>()
                })
            })
            .collect();
        let err = max_rel_err(&to_vec(y), &want);
        assert!(err < 1e-5, "{d_out}x{d_in}/{block} rank {rank}: {err:e}");
        assert!(max_rel_err(&to_vec(layer.weight()), &w) < 1e-5);
    }
}

backend_tests!(forward_matches_dense_reference, |B, device| {
    check_forward::<B>(device)
});

#[cfg(feature = "ndarray")]
#[test]
fn compression_of_the_paper_layer_is_exactly_256() {
    let layer = RbeLinearConfig::new(1024, 1024)
        .with_block_size(32)
        .with_bias(false)
        .init::<NdArray>(&Default::default());
    assert_eq!(layer.storage_bytes(), 16 * 1024);
    assert_eq!(layer.storage().dense_bytes, 4 * 1024 * 1024);
    assert_eq!(layer.compression_ratio(), 256.0);
}

#[cfg(feature = "ndarray")]
#[test]
fn storage_counts_residual_bias_and_edge_blocks() {
    let layer = RbeLinearConfig::new(100, 30)
        .with_block_size(32)
        .with_residual_rank(2)
        .init::<NdArray>(&Default::default());
    let s = layer.storage();
    // 30 x 100 needs 1 x 4 blocks; the last covers 4 of its 32 columns but costs a seed.
    assert_eq!(s.seed_bytes, 16 * 4);
    assert_eq!(s.residual_bytes, 4 * 2 * (100 + 30));
    assert_eq!(s.bias_bytes, 4 * 30);
    assert_eq!(s.dense_bytes, 4 * (30 * 100 + 30));
    let shown = format!("{layer}");
    assert!(
        shown.contains("d_input: 100") && shown.contains("compression"),
        "{shown}"
    );
}

#[cfg(feature = "ndarray")]
#[test]
fn bad_configs_are_typed_errors() {
    let device = Default::default();
    let bad = [
        RbeLinearConfig::new(0, 4),
        RbeLinearConfig::new(4, 4).with_block_size(0),
        RbeLinearConfig::new(4, 4).with_residual_rank(5),
        RbeLinearConfig::new(4, 4).with_format(paper().with_transitions(Some(-1.0)).into()),
        RbeLinearConfig::new(4, 4).with_format(paper().with_transitions(Some(f64::NAN)).into()),
        RbeLinearConfig::new(4, 4).with_format(paper().with_radius(0.0, 2.0).into()),
        RbeLinearConfig::new(4, 4).with_format(paper().with_radius(3.0, 2.0).into()),
        RbeLinearConfig::new(4, 4).with_format(paper().with_radius(0.1, f64::INFINITY).into()),
    ];
    for config in bad {
        assert!(config.try_init::<NdArray>(&device).is_err(), "{config:?}");
    }
    let nan_seed = crate::Packed128 {
        hi: 0,
        lo: u64::from(f32::NAN.to_bits()) << 32,
    };
    let err = RbeLinearConfig::new(4, 4)
        .with_block_size(4)
        .init_with_seeds::<NdArray>(&[nan_seed], &device)
        .unwrap_err();
    assert!(matches!(err, RbeError::Seed(_)), "{err}");
}

#[cfg(feature = "ndarray")]
#[test]
fn wrong_input_width_is_a_typed_error() {
    let device = Default::default();
    let layer = RbeLinearConfig::new(6, 3).init::<NdArray>(&device);
    let err = layer
        .try_forward(Tensor::<NdArray, 2>::zeros([2, 5], &device))
        .unwrap_err();
    assert!(matches!(err, RbeError::Shape { .. }), "{err}");
    assert!(
        layer
            .try_forward(Tensor::<NdArray, 1>::zeros([6], &device))
            .is_ok()
    );
}
