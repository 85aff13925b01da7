//! The backend op against the f64 reference.

use burn::tensor::TensorPrimitive;
use burn::tensor::{Tensor, backend::Backend};
use rbe_cubecl::reference::{decode_dense, layer_backward, layer_forward};

use super::*;
use crate::{RbeBackend, RbeKernel, RbeSpec};

const THRESHOLD: f64 = 0.1;

/// `(forward, grad_x, grad_coords)` worst relative errors over the cases; transition counts
/// must match exactly.
pub fn check_op<B: RbeBackend>(
    device: &B::Device,
    kernel: RbeKernel,
    cases_n: usize,
    seed: u64,
) -> [f64; 4] {
    let mut rng = rng(seed);
    let mut worst = [0f64; 4];
    for (layout, batch) in cases(&mut rng, cases_n) {
        let seeds = random_seeds(&mut rng, layout.num_blocks());
        let p = params(&seeds);
        let x = random_vec(&mut rng, batch * layout.cols);
        let g = random_vec(&mut rng, batch * layout.rows);
        let spec = RbeSpec {
            layout,
            kernel,
            transition_threshold: Some(THRESHOLD as f32),
        };
        let (coords, bits) = seed_tensors::<B>(&seeds, device);
        let xt = tensor::<B, 2>(&x, [batch, layout.cols], device);
        let gt = tensor::<B, 2>(&g, [batch, layout.rows], device);

        let y = B::rbe_forward(
            xt.clone().into_primitive().tensor(),
            coords.clone().into_primitive().tensor(),
            bits.clone().into_primitive(),
            &spec,
        );
        let want = layer_forward(&p, &layout, &x, batch).unwrap();
        worst[0] = worst[0].max(max_rel_err(&to_vec(float::<B>(y)), &want));

        let w = B::rbe_decode(
            coords.clone().into_primitive().tensor(),
            bits.clone().into_primitive(),
            &spec,
        );
        let want_w = decode_dense(&p, &layout).unwrap();
        worst[3] = worst[3].max(max_rel_err(&to_vec(float::<B>(w)), &want_w));

        // Inputs are f32 on the device: the reference must see the same rounded values.
        let x32: Vec<f64> = x.iter().map(|&v| f64::from(v as f32)).collect();
        let g32: Vec<f64> = g.iter().map(|&v| f64::from(v as f32)).collect();
        let want = layer_backward(&p, &layout, &x32, &g32, batch, THRESHOLD).unwrap();
        let got = B::rbe_backward(
            xt.into_primitive().tensor(),
            coords.into_primitive().tensor(),
            bits.into_primitive(),
            gt.into_primitive().tensor(),
            &spec,
        );
        worst[1] = worst[1].max(max_rel_err(&to_vec(float::<B>(got.x)), &want.grad_x));
        let want_coords: Vec<f64> = want
            .grad_r
            .iter()
            .zip(&want.grad_theta)
            .flat_map(|(r, t)| [*r, *t])
            .collect();
        worst[2] = worst[2].max(max_rel_err(&to_vec(float::<B>(got.coords)), &want_coords));

        let counts = to_vec(float::<B>(got.transitions.expect("threshold was set")));
        let want_counts: Vec<f64> = want
            .transition_counts
            .iter()
            .flat_map(|c| c.map(f64::from))
            .collect();
        // A dW within float rounding of the threshold may legitimately flip; count them.
        let near = near_threshold(&x32, &g32, &layout, batch);
        let differing = counts
            .iter()
            .zip(&want_counts)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>();
        assert!(
            differing <= near as f64,
            "{layout:?} batch {batch}: transition counts differ by {differing} (near threshold: {near})"
        );
    }
    worst
}

fn near_threshold(x: &[f64], g: &[f64], layout: &rbe_cubecl::BlockLayout, batch: usize) -> usize {
    let mut near = 0;
    for o in 0..layout.rows {
        for k in 0..layout.cols {
            let dw: f64 = (0..batch)
                .map(|n| g[n * layout.rows + o] * x[n * layout.cols + k])
                .sum();
            if (dw.abs() - THRESHOLD).abs() < 1e-5 {
                near += 1;
            }
        }
    }
    near
}

fn float<B: Backend>(t: burn::tensor::ops::FloatTensor<B>) -> Tensor<B, 2> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn assert_within(worst: [f64; 4], tol: f64) {
    let names = ["forward", "grad_x", "grad_coords", "decode"];
    for (name, err) in names.iter().zip(worst) {
        assert!(err <= tol, "{name}: max relative error {err:e} > {tol:e}");
    }
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_op_matches_reference() {
    assert_within(
        check_op::<NdArray>(&Default::default(), RbeKernel::ClosedForm, 30, 11),
        1e-5,
    );
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_closed_form_op_matches_reference() {
    if let Some(device) = wgpu_device() {
        assert_within(
            check_op::<Wgpu>(&device, RbeKernel::ClosedForm, 30, 12),
            1e-5,
        );
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_cordic_op_matches_reference() {
    if let Some(device) = wgpu_device() {
        assert_within(check_op::<Wgpu>(&device, RbeKernel::Cordic, 30, 13), 1e-5);
    }
}
