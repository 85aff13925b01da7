//! The Beltrami–Klein model of curvature `-c`: the ball of radius `1/sqrt(c)` in which
//! geodesics are straight chords. Only conversions are provided; compute in the Poincaré or
//! Lorentz model.
//!
//! The Klein radius of a point is `2r/(1 + r^2)` for Poincaré radius `r` (units of
//! `1/sqrt(c)`): points near the Poincaré boundary crowd much closer to the Klein boundary
//! (`1 - k = (1 - r)^2/(1 + r^2)`). f32 cannot tell a Klein radius above about `1 - 6e-8`
//! from 1, so Poincaré points beyond about `1 - 3e-4` do not survive a round trip through
//! Klein coordinates in f32; [`to_poincare`] and [`to_lorentz`] treat such points as if at
//! the Klein radius where `1 - c|k|^2 = MIN_KLEIN_GAP`.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::{c2, lorentz, poincare, sq_norm, sqrt_c2};

/// Floor of `1 - c|k|^2`: it is square-rooted and divided by, and rounding makes it 0 or
/// negative for Klein points that f32 cannot distinguish from the boundary.
pub const MIN_KLEIN_GAP: f64 = 1e-7;

/// `1 - c|k|^2`, floored at [`MIN_KLEIN_GAP`], `[n, 1]`.
fn klein_gap<B: Backend>(k: &Tensor<B, 2>, c: &Tensor<B, 1>) -> Tensor<B, 2> {
    (sq_norm(k) * c2(c))
        .neg()
        .add_scalar(1.0)
        .clamp_min(MIN_KLEIN_GAP)
}

/// From the Poincaré ball: `k = 2p / (1 + c|p|^2)`.
///
/// # Shapes
/// - `x`: `[n, d]`, `c`: `[1]`
/// - returns `[n, d]`
pub fn from_poincare<B: Backend>(x: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let den = (sq_norm(&x) * c2(&c)).add_scalar(1.0);
    x.mul_scalar(2.0) / den
}

/// To the Poincaré ball: `p = k / (1 + sqrt(1 - c|k|^2))`, projected into the ball.
///
/// # Shapes
/// - `k`: `[n, d]`, `c`: `[1]`
/// - returns `[n, d]`
pub fn to_poincare<B: Backend>(k: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let den = klein_gap(&k, &c).sqrt().add_scalar(1.0);
    poincare::project(k / den, c)
}

/// From the hyperboloid: `k = x_s / (sqrt(c) x_0)`.
///
/// # Shapes
/// - `x`: `[n, d + 1]`, `c`: `[1]`
/// - returns `[n, d]`
pub fn from_lorentz<B: Backend>(x: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let [n, d1] = x.dims();
    let t = x.clone().slice([0..n, 0..1]);
    let s = x.slice([0..n, 1..d1]);
    // x_0 >= 1/sqrt(c) on the hyperboloid, so the denominator is at least 1.
    s / (t * sqrt_c2(&c))
}

/// To the hyperboloid: `x = (1/sqrt(c), k) / sqrt(1 - c|k|^2)`, projected.
///
/// # Shapes
/// - `k`: `[n, d]`, `c`: `[1]`
/// - returns `[n, d + 1]`
pub fn to_lorentz<B: Backend>(k: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let root = klein_gap(&k, &c).sqrt();
    let t = (root.clone() * sqrt_c2(&c)).recip();
    let s = k / root;
    lorentz::project(Tensor::cat(vec![t, s], 1), c)
}
