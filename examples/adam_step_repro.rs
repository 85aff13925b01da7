//! A reduction of the dense training step's slow part for Burn's maintainers, with nothing
//! but Burn: one 4096x4096 `Linear` on `Autodiff<Flex>`, batch 64, and Adam. It prints the
//! time of forward + backward and of `Optimizer::step` for a few steps
//! (docs/dense-training-baseline.md).
//!
//! ```text
//! cargo run --release --example adam_step_repro
//! ```

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::nn::LinearConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Distribution, Tensor};

type B = Autodiff<Flex<f32, i32>>;

const WIDTH: usize = 4096;
const BATCH: usize = 64;
const STEPS: usize = 6;

fn main() {
    let device = Default::default();
    let mut layer = LinearConfig::new(WIDTH, WIDTH).init::<B>(&device);
    let mut adam = AdamConfig::new().init();
    let x = Tensor::<B, 2>::random([BATCH, WIDTH], Distribution::Default, &device);
    for step in 0..STEPS {
        let start = Instant::now();
        let loss = layer.forward(x.clone()).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        let backward = start.elapsed();
        layer = adam.step(1e-3, layer, grads);
        let total = start.elapsed();
        println!(
            "step {step}: forward+backward {:.1} ms, Adam step {:.1} ms",
            backward.as_secs_f64() * 1e3,
            (total - backward).as_secs_f64() * 1e3
        );
    }
}
