//! One optimizer step with transitions, against the f64 reference step.

use burn::backend::Autodiff;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use rbe_kernels::formats::paper::reference::{
    RADIUS_RANGE, apply_transition_counts, layer_backward,
};

use super::*;
use crate::{RbeBackend, RbeLinearConfig, RbeOptimizer};

/// Plain SGD through `RbeOptimizer`: `r <- clamp(r - lr dL/dr)`, `theta <- theta - lr
/// dL/dtheta`, bits moved by the counts of `dW`, for `L = sum(y * u)`.
fn check_step<B: RbeBackend>(device: &B::Device) {
    type Ad<B> = Autodiff<B>;
    let mut rng = rng(61);
    let (d_in, d_out, block, batch, lr) = (21, 13, 4, 6, 0.05);
    let config = RbeLinearConfig::new(d_in, d_out)
        .with_block_size(block)
        .with_bias(false);
    let layout = config.layout().unwrap();
    let seeds = random_seeds(&mut rng, layout.num_blocks());
    let layer = config.init_with_seeds::<Ad<B>>(&seeds, device).unwrap();
    let x: Vec<f64> = random_vec(&mut rng, batch * d_in)
        .into_iter()
        .map(|v| f64::from(v as f32))
        .collect();
    let u: Vec<f64> = random_vec(&mut rng, batch * d_out)
        .into_iter()
        .map(|v| f64::from(v as f32))
        .collect();
    let y = layer.forward(tensor::<Ad<B>, 2>(&x, [batch, d_in], device));
    let loss = (y * tensor::<Ad<B>, 2>(&u, [batch, d_out], device)).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &layer);
    let mut optim = RbeOptimizer::new(SgdConfig::new().init());
    let stepped = optim.step(lr, layer, grads).seeds_packed().unwrap();

    let want = layer_backward(&params(&seeds), &layout, &x, &u, batch, 0.1).unwrap();
    for (s, (before, after)) in seeds.iter().zip(&stepped).enumerate() {
        let r =
            (f64::from(before.r()) - lr * want.coords[2 * s]).clamp(RADIUS_RANGE.0, RADIUS_RANGE.1);
        let theta = f64::from(before.theta()) - lr * want.coords[2 * s + 1];
        assert!(
            (f64::from(after.r()) - r).abs() < 1e-6,
            "seed {s}: r {} vs {r}",
            after.r()
        );
        assert!(
            (f64::from(after.theta()) - theta).abs() < 1e-6,
            "seed {s}: theta {} vs {theta}",
            after.theta()
        );
        let counts = &want.signal.as_ref().expect("counts")[4 * s..4 * s + 4];
        let hi = apply_transition_counts(before.hi, [0, 1, 2, 3].map(|k| counts[k] as i32));
        assert_eq!(after.hi, hi, "seed {s}: bits");
    }
    assert!(
        stepped.iter().zip(&seeds).any(|(a, b)| a.hi != b.hi),
        "some bits moved"
    );
}

backend_tests!(step_equals_reference_step, |B, device| check_step::<B>(
    device
));
