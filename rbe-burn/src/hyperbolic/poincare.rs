//! The Poincaré ball of curvature `-c`: the open ball of radius `1/sqrt(c)` with the metric
//! `lambda_x^2 <., .>`, `lambda_x = 2 / (1 - c|x|^2)`, and its Möbius gyrovector operations
//! (Ganea, Bécigneul and Hofmann, "Hyperbolic Neural Networks", 2018).
//!
//! All functions take points as rows `[n, d]` and `c` as `[1]`; see the module
//! [`crate::hyperbolic`] for the numerical guards.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::{
    BALL_EPS, MIN_GAP, artanh_clamped, asinh_odd, c2, clamp_tangent, dot, norm, small, sq_norm,
    sqrt_c2,
};

/// `1 - c|x|^2` per row, `[n, 1]`, floored at [`super::MIN_GAP`]: it is divided by, and
/// rounding can make it 0 or negative at the projection radius.
pub(crate) fn gap<B: Backend>(x: &Tensor<B, 2>, c: &Tensor<B, 1>) -> Tensor<B, 2> {
    (sq_norm(x) * c2(c))
        .neg()
        .add_scalar(1.0)
        .clamp_min(MIN_GAP)
}

/// The conformal factor `lambda_x = 2 / (1 - c|x|^2)`.
///
/// # Shapes
/// - `x`: `[n, d]`, `c`: `[1]`
/// - returns `[n, 1]`
pub fn lambda<B: Backend>(x: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    gap(&x, &c).recip().mul_scalar(2.0)
}

/// Möbius addition without the final projection (the log map needs the unprojected value).
///
/// `x ⊕ y = ((1 + 2c<x,y> + c|y|^2) x + (1 - c|x|^2) y) / (1 + 2c<x,y> + c^2|x|^2|y|^2)`,
/// evaluated in a form without cancellation near the boundary:
/// - `1 + 2c<x,y> + c|y|^2 = (1 - c|x|^2) + c|x + y|^2`,
/// - `1 + 2c<x,y> + c^2|x|^2|y|^2 = (1 + c<x,y>)^2 + c^2 |x|^2 |y_perp|^2`, where
///   `y_perp = y - (<x,y>/|x|^2) x` (Lagrange's identity).
///
/// Both are sums of non-negative terms, so `(-x) ⊕ x` is exactly 0 even at radius
/// `1 - 1e-5` in f32 (the textbook form gives a denominator of `4e-10` computed with an
/// error of `1e-7` there, i.e. garbage).
pub(crate) fn mobius_add_raw<B: Backend>(
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
    c: &Tensor<B, 1>,
) -> Tensor<B, 2> {
    let c = c2(c);
    let xx = sq_norm(&x);
    let xy = dot(&x, &y);
    // 1 - c|x|^2, unclamped: for points inside the ball it is positive; a clamp here
    // would bias x ⊕ 0 away from x.
    let one_minus = (xx.clone() * c.clone()).neg().add_scalar(1.0);
    let sum = x.clone() + y.clone();
    let a = one_minus.clone() + sq_norm(&sum) * c.clone();
    // <x,y>/|x|^2 with |x|^2 floored: at x = 0 it is 0, and then |x|^2 |y_perp|^2 = 0.
    let ratio = xy.clone() / xx.clone().clamp_min(super::MIN_NORM * super::MIN_NORM);
    let y_perp = y.clone() - x.clone() * ratio;
    let first = (xy * c.clone()).add_scalar(1.0).square();
    let second = xx * sq_norm(&y_perp) * c.square();
    // Floored: the denominator is a sum of squares, 0 only when 1 + c<x,y> = 0 and y is
    // parallel to x, i.e. y = -x/(c|x|^2), outside the ball.
    let den = (first + second).clamp_min(super::MIN_NORM * super::MIN_NORM);
    (x * a + y * one_minus) / den
}

/// Möbius addition `x ⊕_c y`, projected into the ball (see [`project`]).
///
/// # Shapes
/// - `x`, `y`: `[n, d]`, `c`: `[1]`
/// - returns `[n, d]`
pub fn mobius_add<B: Backend>(x: Tensor<B, 2>, y: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    project(mobius_add_raw(x, y, &c), c)
}

/// The exponential map at the origin, `tanh(sqrt(c)|v|) v / (sqrt(c)|v|)`, projected.
///
/// # Shapes
/// - `v`: `[n, d]` (tangent vectors at 0), `c`: `[1]`
/// - returns `[n, d]`
pub fn expmap0<B: Backend>(v: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let v = clamp_tangent(v);
    let sc = sqrt_c2(&c);
    let scaled = norm(&v) * sc;
    let factor = small::tanh(scaled.clone()) / scaled;
    project(v * factor, c)
}

/// The logarithmic map at the origin, `artanh(sqrt(c)|y|) y / (sqrt(c)|y|)`.
///
/// # Shapes
/// - `y`: `[n, d]` (points), `c`: `[1]`
/// - returns `[n, d]` (tangent vectors at 0)
pub fn logmap0<B: Backend>(y: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let scaled = norm(&y) * sqrt_c2(&c);
    let factor = artanh_clamped(scaled.clone()) / scaled;
    y * factor
}

/// The exponential map at `x`: `x ⊕ (tanh(sqrt(c) lambda_x |v| / 2) v / (sqrt(c)|v|))`,
/// projected.
///
/// # Shapes
/// - `x`: `[n, d]` (points), `v`: `[n, d]` (tangent vectors at `x`), `c`: `[1]`
/// - returns `[n, d]`
pub fn expmap<B: Backend>(x: Tensor<B, 2>, v: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let v = clamp_tangent(v);
    let sc = sqrt_c2(&c);
    let vn = norm(&v);
    // lambda_x |v| / 2 = |v| / (1 - c|x|^2).
    let arg = vn.clone() * sc.clone() / gap(&x, &c);
    let step = v * (small::tanh(arg) / (vn * sc));
    mobius_add(x, step, c)
}

/// The logarithmic map at `x`: `(2 / (sqrt(c) lambda_x)) artanh(sqrt(c)|w|) w / |w|` with
/// `w = (-x) ⊕ y`.
///
/// # Shapes
/// - `x`, `y`: `[n, d]` (points), `c`: `[1]`
/// - returns `[n, d]` (tangent vectors at `x`)
pub fn logmap<B: Backend>(x: Tensor<B, 2>, y: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let sc = sqrt_c2(&c);
    let g = gap(&x, &c);
    // Unprojected: projecting w would cap the distance between far-apart points near the
    // boundary; the artanh clamp is the guard instead.
    let w = mobius_add_raw(x.neg(), y, &c);
    let wn = norm(&w);
    let factor = g * artanh_clamped(wn.clone() * sc.clone()) / (wn * sc);
    w * factor
}

/// The geodesic distance,
/// `d(x, y) = (2/sqrt(c)) asinh(sqrt(c)|x - y| / sqrt((1 - c|x|^2)(1 - c|y|^2)))`.
///
/// This equals `(2/sqrt(c)) artanh(sqrt(c)|(-x) ⊕ y|)` (and the `arcosh` form) but needs no
/// Möbius addition, has no `artanh` to saturate, and is well conditioned for nearby points
/// and near the boundary.
///
/// # Shapes
/// - `x`, `y`: `[n, d]`, `c`: `[1]`
/// - returns `[n]`
pub fn distance<B: Backend>(x: Tensor<B, 2>, y: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 1> {
    let sc = sqrt_c2(&c);
    let den = (gap(&x, &c) * gap(&y, &c)).sqrt();
    let chord = norm(&(x - y));
    let d = asinh_odd(chord * sc.clone() / den).mul_scalar(2.0) / sc;
    d.squeeze_dim::<1>(1)
}

/// Projection into the ball of radius `(1 - BALL_EPS)/sqrt(c)`: rows longer than that are
/// scaled back onto it, others are unchanged.
///
/// # Shapes
/// - `x`: `[n, d]`, `c`: `[1]`
/// - returns `[n, d]`
pub fn project<B: Backend>(x: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    // Coordinates beyond TANGENT_MAX would overflow the squared norm (and the point would
    // collapse to 0 instead of landing on the sphere).
    let x = clamp_tangent(x);
    let max_norm = sqrt_c2(&c).recip().mul_scalar(1.0 - BALL_EPS);
    let factor = (max_norm / norm(&x)).clamp_max(1.0);
    x * factor
}

/// The Möbius matrix-vector product `M ⊗_c x = expmap0(m(logmap0(x)))`.
///
/// For a linear `m` this is exactly Ganea et al.'s formula
/// `(1/sqrt(c)) tanh(|Mx|/|x| artanh(sqrt(c)|x|)) Mx/|Mx|` (with `M ⊗ x = 0` when
/// `Mx = 0`): `logmap0(x)` is `x` scaled by `artanh(sqrt(c)|x|)/(sqrt(c)|x|)`, and `m`
/// commutes with the scaling. A non-linear `m` (e.g. with a bias) gives the
/// tangent-space-at-the-origin map instead.
///
/// # Shapes
/// - `x`: `[n, d_in]`, `c`: `[1]`; `m` maps `[n, d_in]` to `[n, d_out]`
/// - returns `[n, d_out]`
pub fn mobius_matvec<B: Backend>(
    m: impl Fn(Tensor<B, 2>) -> Tensor<B, 2>,
    x: Tensor<B, 2>,
    c: Tensor<B, 1>,
) -> Tensor<B, 2> {
    expmap0(m(logmap0(x, c.clone())), c)
}
