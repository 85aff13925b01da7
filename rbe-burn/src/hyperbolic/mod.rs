//! Hyperbolic geometry and layers with a learnable curvature, as Burn modules.
//!
//! Three models of hyperbolic space of constant curvature `-c` (`c > 0`):
//! - [`poincare`]: the Poincaré ball of radius `1/sqrt(c)`, Möbius gyrovector operations;
//! - [`lorentz`]: the hyperboloid `<x, x>_L = -1/c`, `x_0 > 0`, time coordinate first;
//! - [`klein`]: the Beltrami–Klein ball, conversions to and from the other two.
//!
//! The layers: [`HypLinear`] (Möbius matrix-vector product and Möbius bias, in the Poincaré
//! or the Lorentz model, around any [`LinearMap`]: a dense `Linear` on any backend, or an
//! [`crate::RbeLinear`]) and [`HypMlr`] (the hyperbolic multinomial logistic regression of
//! Ganea et al. 2018). Each holds a [`Curvature`], fixed or trained (kept positive through a
//! softplus).
//!
//! # Conventions
//! - Points are rows: `[n, d]` in the Poincaré and Klein balls, `[n, d + 1]` on the
//!   hyperboloid (time coordinate first).
//! - The curvature magnitude `c` is a `Tensor<B, 1>` of shape `[1]`, so it can be a trained
//!   parameter; it broadcasts over the rows.
//!
//! # Numerical safety
//! Every function is written so that no NaN or infinity appears, in values or gradients, for
//! finite inputs on the manifold (or projected onto it), including the origin and points at
//! radius `(1 - 1e-5)/sqrt(c)`. The guards, each commented where it is applied:
//! - norms are `sqrt(max(|x|^2, MIN_NORM^2))`: `sqrt` has an infinite derivative at 0, and
//!   the maps divide by norms; below the floor the gradient of the norm is 0, which is the
//!   correct limit of every `f(|x|) x / |x|` used here;
//! - `artanh` arguments are clamped to `ATANH_MAX < 1`;
//! - `tanh`, `artanh`, `sinh` and `asinh` switch to their Taylor series near 0, where GPU
//!   libraries' `exp`/`ln` forms cancel (`small`);
//! - conformal factors `1 - c|x|^2` are clamped to `MIN_GAP > 0`;
//! - outputs of the exponential maps and Möbius operations are projected into the ball of
//!   radius `(1 - BALL_EPS)/sqrt(c)` ([`poincare::project`]) or onto the part of the
//!   hyperboloid within distance `lorentz::MAX_DIST/sqrt(c)` of the origin
//!   ([`lorentz::project`]);
//! - tangent-vector coordinates are clamped to `±TANGENT_MAX` so squared norms cannot
//!   overflow f32 (the maps saturate long before: `tanh(40) == 1` in f32).

pub mod curvature;
pub mod klein;
pub mod linear;
pub mod linear_map;
pub mod lorentz;
pub mod mlr;
pub mod poincare;
mod small;

pub use curvature::{Curvature, CurvatureConfig};
/// The hyperbolic layers report [`crate::RbeError`], the crate's one error type.
#[deprecated(note = "use rbe_burn::RbeError, the crate's one error type")]
pub type HyperbolicError = crate::RbeError;
pub use linear::{HypLinear, HypLinearConfig, HyperbolicModel};
pub use linear_map::LinearMap;
pub use mlr::{HypMlr, HypMlrConfig};

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Floor of every norm. Its square, `1e-30`, is a normal f32 (`> 1.2e-38`).
pub const MIN_NORM: f64 = 1e-15;
/// Largest `artanh` argument: `artanh(1) = inf`. In f32 this rounds to `1 - 1.19e-7`, the
/// largest value below 1 it resolves well, where `artanh = 8.3` and its derivative is `4e6`.
pub const ATANH_MAX: f64 = 1.0 - 1e-7;
/// Floor of the conformal gap `1 - c|x|^2`. At the projection radius the gap is `2e-5`; the
/// floor only catches rounding (f32 resolves `1 - c|x|^2` to about `6e-8`).
pub const MIN_GAP: f64 = 1e-7;
/// Points are projected into the ball of radius `(1 - BALL_EPS)/sqrt(c)`. In f32, `1 - r`
/// is known to about `6e-8`, so at `1 - 1e-5` the conformal factor is still accurate to
/// about 0.5%; the hyperbolic distance to the origin there is `12.2/sqrt(c)`.
pub const BALL_EPS: f64 = 1e-5;
/// Bound of each tangent-vector coordinate: `d * TANGENT_MAX^2` stays below `f32::MAX` for
/// any `d < 3e8`, so squared norms never overflow.
pub const TANGENT_MAX: f64 = 1e15;

/// `c` as `[1, 1]`, to broadcast against `[n, 1]` and `[n, d]`.
pub(crate) fn c2<B: Backend>(c: &Tensor<B, 1>) -> Tensor<B, 2> {
    c.clone().unsqueeze::<2>()
}

/// `sqrt(c)` as `[1, 1]`.
pub(crate) fn sqrt_c2<B: Backend>(c: &Tensor<B, 1>) -> Tensor<B, 2> {
    c2(c).sqrt()
}

/// `|x|^2` per row, `[n, 1]`.
pub(crate) fn sq_norm<B: Backend>(x: &Tensor<B, 2>) -> Tensor<B, 2> {
    x.clone().square().sum_dim(1)
}

/// `|x|` per row, `[n, 1]`, floored at [`MIN_NORM`]: `sqrt` has an infinite derivative at
/// 0 and callers divide by it.
pub(crate) fn norm<B: Backend>(x: &Tensor<B, 2>) -> Tensor<B, 2> {
    sq_norm(x).clamp_min(MIN_NORM * MIN_NORM).sqrt()
}

/// Row-wise dot product, `[n, 1]`.
pub(crate) fn dot<B: Backend>(x: &Tensor<B, 2>, y: &Tensor<B, 2>) -> Tensor<B, 2> {
    (x.clone() * y.clone()).sum_dim(1)
}

/// `artanh(min(z, ATANH_MAX))` for `z >= 0`: `artanh(1)` is infinite, and rounding can push
/// `sqrt(c)|x|` to 1 at the projection radius.
pub(crate) fn artanh_clamped<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    small::atanh(z.clamp_max(ATANH_MAX))
}

/// `asinh(x)` computed as `s * asinh(s * x)` with `s = ±1` the sign of `x` (`+1` at 0):
/// `asinh` is odd, and the `ln(x + sqrt(x^2 + 1))` some GPU libraries use cancels to
/// `ln(0) = -inf` for large negative `x`. `s` is a constant to autodiff, so the gradient
/// is `asinh'(x)` everywhere, 1 at 0 (a `sign`/`abs` form would give 0 there).
pub(crate) fn asinh_odd<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let s = x
        .clone()
        .detach()
        .greater_equal_elem(0.0)
        .float()
        .mul_scalar(2.0)
        .sub_scalar(1.0);
    small::asinh(x * s.clone()) * s
}

/// Tangent-vector coordinates clamped to `±TANGENT_MAX`, so squared norms cannot overflow.
pub(crate) fn clamp_tangent<B: Backend, const D: usize>(v: Tensor<B, D>) -> Tensor<B, D> {
    v.clamp(-TANGENT_MAX, TANGENT_MAX)
}

#[cfg(test)]
mod tests;
