//! Tests of the hyperbolic geometry and layers.
//!
//! The geometry and layers run on NdArray, Flex and WGPU (f32, through
//! [`crate::tests::backend_tests`]; on WGPU as `burn::backend::Wgpu` builds it, with fusion:
//! they are tensor ops only, and on lavapipe each WGPU variant costs minutes of CI), checked
//! against identities and an f64 host reference (`reference`); the finite-difference gradient
//! checks run in f64 on `NdArray<f64>` and, in f32 with a coarse step, on every backend.

mod boundary;
mod cross;
mod gradients;
mod layers;
mod poincare;
mod reference;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub(super) use crate::tests::backend_tests;

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `c` as a `[1]` tensor.
pub fn curv<B: Backend>(c: f64, device: &B::Device) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(vec![c], [1]), device)
}

/// Row-major values as `[n, d]`.
pub fn rows<B: Backend>(values: &[f64], d: usize, device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len() / d, d]),
        device,
    )
}

/// A tensor read back as f64.
pub fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec::<f64>().unwrap()
}

/// Standard normal values (Box–Muller).
pub fn normals(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let u: f64 = rng.random_range(1e-12..1.0);
            let v: f64 = rng.random_range(0.0..1.0);
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

/// One point per radius (in units of the ball radius `1/sqrt(c)`), random directions.
pub fn ball_points(rng: &mut StdRng, radii: &[f64], d: usize, c: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(radii.len() * d);
    for &r in radii {
        let dir = normals(rng, d);
        let len = dir.iter().map(|v| v * v).sum::<f64>().sqrt();
        out.extend(dir.iter().map(|v| v / len * r / c.sqrt()));
    }
    out
}

/// The radii the identities are checked at, up to the brief's `1 - 1e-5`.
pub const RADII: [f64; 9] = [0.0, 1e-6, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0 - 1e-5];

pub fn assert_finite(values: &[f64], what: &str) {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        panic!("{what}: non-finite value {} at {i}", values[i]);
    }
}

pub fn row_norms(values: &[f64], d: usize) -> Vec<f64> {
    values
        .chunks(d)
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect()
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}
