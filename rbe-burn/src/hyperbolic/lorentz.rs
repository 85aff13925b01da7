//! The Lorentz (hyperboloid) model of curvature `-c`: the upper sheet of
//! `<x, x>_L = -1/c`, `x_0 > 0`, where `<x, y>_L = -x_0 y_0 + sum_i x_i y_i` is the
//! Minkowski inner product. Points are rows `[n, d + 1]`, time coordinate first; the
//! origin is `(1/sqrt(c), 0, ..., 0)`.
//!
//! Distances and log maps never evaluate `<x, y>_L` directly: far from the origin it is a
//! difference of products of size `x_0 y_0` (see `delta`). Coordinates grow like
//! `e^(sqrt(c) d)/sqrt(c)`, so points are kept within distance [`MAX_DIST`]`/sqrt(c)` of
//! the origin by [`project`].

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::{MIN_NORM, asinh_odd, c2, clamp_tangent, dot, norm, poincare, small, sq_norm, sqrt_c2};

/// Points are kept within hyperbolic distance `MAX_DIST/sqrt(c)` of the origin. Their
/// coordinates are then at most `cosh(16)/sqrt(c) = 4.4e6/sqrt(c)`, an exponential map from
/// there reaches at most `cosh(32) = 4e13`, and squares stay far from the f32 range. For
/// comparison, the Poincaré projection radius `1 - 1e-5` is at distance `12.2/sqrt(c)`.
pub const MAX_DIST: f64 = 16.0;

/// The spatial part `x_1..x_d`, `[n, d]`.
fn space<B: Backend>(x: &Tensor<B, 2>) -> Tensor<B, 2> {
    let [n, d1] = x.dims();
    x.clone().slice([0..n, 1..d1])
}

/// The time coordinate `x_0`, `[n, 1]`.
fn time<B: Backend>(x: &Tensor<B, 2>) -> Tensor<B, 2> {
    let [n, _] = x.dims();
    x.clone().slice([0..n, 0..1])
}

/// `(t, s)` as one `[n, d + 1]` tensor.
fn join<B: Backend>(t: Tensor<B, 2>, s: Tensor<B, 2>) -> Tensor<B, 2> {
    Tensor::cat(vec![t, s], 1)
}

/// `<x, y>_L` per row as `[n, 1]`.
fn mdot<B: Backend>(x: &Tensor<B, 2>, y: &Tensor<B, 2>) -> Tensor<B, 2> {
    dot(&space(x), &space(y)) - time(x) * time(y)
}

/// The Minkowski inner product `<x, y>_L = -x_0 y_0 + sum_i x_i y_i`.
///
/// # Shapes
/// - `x`, `y`: `[n, d + 1]`
/// - returns `[n]`
pub fn minkowski_dot<B: Backend>(x: Tensor<B, 2>, y: Tensor<B, 2>) -> Tensor<B, 1> {
    mdot(&x, &y).squeeze_dim::<1>(1)
}

/// `delta = -c<x, y>_L - 1 = (c/2)|x - y|_L^2 >= 0`, `[n, 1]`, in a form without
/// cancellation.
///
/// Both `-c<x, y>_L` (products of size `x_0 y_0`) and the chord `|x - y|_L^2` (a difference
/// of squares, nearly lightlike for points on one ray) cancel catastrophically in f32 far
/// from the origin. With `a = asinh(sqrt(c)|x_s|)`, `b = asinh(sqrt(c)|y_s|)` (the distances
/// to the origin, times `sqrt(c)`) and the unit directions `x^`, `y^` of the spatial parts:
/// `-c<x, y>_L = cosh(a - b) + sinh(a) sinh(b) |x^ - y^|^2 / 2`, so
/// `delta = 2 sinh^2((a - b)/2) + c|x_s||y_s| |x^ - y^|^2 / 2`: a sum of non-negative
/// terms, each accurate. Uses the spatial parts only (`x_0` follows from them on the
/// hyperboloid). Floored at `MIN_NORM^2` because callers take its square root.
fn delta<B: Backend>(x: &Tensor<B, 2>, y: &Tensor<B, 2>, c: &Tensor<B, 1>) -> Tensor<B, 2> {
    let sc = sqrt_c2(c);
    let (xs, ys) = (space(x), space(y));
    let (nx, ny) = (norm(&xs), norm(&ys));
    let a = asinh_odd(nx.clone() * sc.clone());
    let b = asinh_odd(ny.clone() * sc);
    let radial = small::sinh((a - b).mul_scalar(0.5))
        .square()
        .mul_scalar(2.0);
    let angular = sq_norm(&(xs / nx.clone() - ys / ny.clone())) * nx * ny * c2(c);
    (radial + angular.mul_scalar(0.5)).clamp_min(MIN_NORM * MIN_NORM)
}

/// `|v|_L` for `v` tangent at `x`, `[n, 1]`, from the spatial parts.
///
/// `-v_0^2 + |v_s|^2` cancels far from the origin, where tangent coordinates are of size
/// `x_0 |v|_L`. With `<x, v>_L = 0`, `v_0 = <x^, v_s>|x_s|/x_0` (`x^ = x_s/|x_s|`), so
/// `|v|_L^2 = |v_s - <x^, v_s> x^|^2 + <x^, v_s>^2 / (1 + c|x_s|^2)`: non-negative terms.
/// The norm is floored at `MIN_NORM` (callers divide by it).
fn tangent_norm<B: Backend>(x: &Tensor<B, 2>, v: &Tensor<B, 2>, c: &Tensor<B, 1>) -> Tensor<B, 2> {
    let (xs, vs) = (space(x), space(v));
    let unit = xs.clone() / norm(&xs);
    let along = dot(&unit, &vs);
    let perp = vs - unit * along.clone();
    let radial = along.square() / (sq_norm(&xs) * c2(c)).add_scalar(1.0);
    (sq_norm(&perp) + radial)
        .clamp_min(MIN_NORM * MIN_NORM)
        .sqrt()
}

/// The exponential map at `x`:
/// `cosh(sqrt(c)|v|_L) x + sinh(sqrt(c)|v|_L) v / (sqrt(c)|v|_L)`, projected.
///
/// `sqrt(c)|v|_L` is capped at `MAX_DIST` (`cosh` overflows f32 at 89); with the direction
/// kept, the result stays on the hyperboloid.
///
/// # Shapes
/// - `x`: `[n, d + 1]` (points), `v`: `[n, d + 1]` (tangent vectors at `x`,
///   `<x, v>_L = 0`), `c`: `[1]`
/// - returns `[n, d + 1]`
pub fn expmap<B: Backend>(x: Tensor<B, 2>, v: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let v = clamp_tangent(v);
    let sc = sqrt_c2(&c);
    let vn = tangent_norm(&x, &v, &c);
    let theta = (vn.clone() * sc.clone()).clamp_max(MAX_DIST);
    let out = x * theta.clone().cosh() + v * (small::sinh(theta) / (vn * sc));
    project(out, c)
}

/// The logarithmic map at `x`: `d(x, y) u / |u|_L` with `u = y + c<x, y>_L x`.
///
/// With `delta = (c/2)|y - x|_L^2`: `u = (y - x) - delta x` and
/// `|u|_L = sqrt(delta (delta + 2))/sqrt(c)`, so the result is
/// `2 asinh(sqrt(delta/2)) / sqrt(delta (delta + 2)) * u`, whose factor tends to 1 as
/// `y -> x`.
///
/// # Shapes
/// - `x`, `y`: `[n, d + 1]` (points), `c`: `[1]`
/// - returns `[n, d + 1]` (tangent vectors at `x`)
pub fn logmap<B: Backend>(x: Tensor<B, 2>, y: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let delta = delta(&x, &y, &c);
    let u = (y - x.clone()) - x * delta.clone();
    let factor = asinh_odd(delta.clone().mul_scalar(0.5).sqrt()).mul_scalar(2.0)
        / (delta.clone() * delta.add_scalar(2.0)).sqrt();
    u * factor
}

/// The exponential map at the origin `o = (1/sqrt(c), 0, ..., 0)`:
/// `(cosh(sqrt(c)|v|)/sqrt(c), sinh(sqrt(c)|v|) v_s / (sqrt(c)|v|))`.
///
/// Takes tangent vectors at `o`, whose time coordinate is 0; it is ignored. `sqrt(c)|v|`
/// is capped at [`MAX_DIST`], the reach of [`project`].
///
/// # Shapes
/// - `v`: `[n, d + 1]`, `c`: `[1]`
/// - returns `[n, d + 1]`
pub fn expmap0<B: Backend>(v: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let vs = clamp_tangent(space(&v));
    let sc = sqrt_c2(&c);
    let vn = norm(&vs);
    let theta = (vn.clone() * sc.clone()).clamp_max(MAX_DIST);
    let t = theta.clone().cosh() / sc.clone();
    let s = vs * (small::sinh(theta) / (vn * sc));
    join(t, s)
}

/// The logarithmic map at the origin: `(0, asinh(sqrt(c)|y_s|) y_s / (sqrt(c)|y_s|))`.
///
/// Uses only the spatial part (the distance to the origin is `asinh(sqrt(c)|y_s|)/sqrt(c)`),
/// which avoids the cancellation in `y_0 - 1/sqrt(c)`.
///
/// # Shapes
/// - `y`: `[n, d + 1]` (points), `c`: `[1]`
/// - returns `[n, d + 1]` (tangent vectors at the origin, time coordinate 0)
pub fn logmap0<B: Backend>(y: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let ys = space(&y);
    let scaled = norm(&ys) * sqrt_c2(&c);
    let s = ys * (asinh_odd(scaled.clone()) / scaled);
    let t = time(&y).zeros_like();
    join(t, s)
}

/// The geodesic distance `arcosh(-c<x, y>_L)/sqrt(c)`, computed as
/// `(2/sqrt(c)) asinh(sqrt(c)|x - y|_L / 2)`.
///
/// # Shapes
/// - `x`, `y`: `[n, d + 1]`, `c`: `[1]`
/// - returns `[n]`
pub fn distance<B: Backend>(x: Tensor<B, 2>, y: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 1> {
    let delta = delta(&x, &y, &c);
    // sqrt(c)|x - y|_L / 2 = sqrt(delta / 2).
    let d = asinh_odd(delta.mul_scalar(0.5).sqrt()).mul_scalar(2.0) / sqrt_c2(&c);
    d.squeeze_dim::<1>(1)
}

/// Projection onto the hyperboloid: the spatial part is kept (capped so the point is within
/// distance [`MAX_DIST`]`/sqrt(c)` of the origin) and `x_0 = sqrt(1/c + |x_s|^2)` is
/// recomputed.
///
/// # Shapes
/// - `x`: `[n, d + 1]`, `c`: `[1]`
/// - returns `[n, d + 1]`
pub fn project<B: Backend>(x: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let xs = space(&x);
    let sc = sqrt_c2(&c);
    // The distance to the origin is asinh(sqrt(c)|x_s|)/sqrt(c).
    let max_norm = sc.recip().mul_scalar(MAX_DIST.sinh());
    let xs = xs.clone() * (max_norm / norm(&xs)).clamp_max(1.0);
    let t = (sq_norm(&xs) + c2(&c).recip()).sqrt();
    join(t, xs)
}

/// From the Poincaré ball: `(1/sqrt(c) (1 + c|p|^2), 2p) / (1 - c|p|^2)`, then projected
/// (`x_0` recomputed from the spatial part, so the result is on the hyperboloid to rounding).
///
/// # Shapes
/// - `p`: `[n, d]`, `c`: `[1]`
/// - returns `[n, d + 1]`
pub fn from_poincare<B: Backend>(p: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let g = poincare::gap(&p, &c);
    let xs = p.mul_scalar(2.0) / g.clone();
    // The time coordinate is recomputed by the projection; a placeholder keeps the shape.
    let t = g.zeros_like();
    project(join(t, xs), c)
}

/// To the Poincaré ball: `p = x_s / (1 + sqrt(c) x_0)` (the denominator is at least 2),
/// then projected into the ball.
///
/// # Shapes
/// - `x`: `[n, d + 1]`, `c`: `[1]`
/// - returns `[n, d]`
pub fn to_poincare<B: Backend>(x: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let den = (time(&x) * sqrt_c2(&c)).add_scalar(1.0);
    poincare::project(space(&x) / den, c)
}

/// The parallel transport of `v` (tangent at the origin, time coordinate 0) to `y`:
/// `v + c <y, v>_L / (1 + sqrt(c) y_0) (o + y)`, `o` the origin.
///
/// # Shapes
/// - `y`: `[n, d + 1]`, `v`: `[n, d + 1]`, `c`: `[1]`
/// - returns `[n, d + 1]` (tangent vectors at `y`)
pub fn transport0<B: Backend>(y: Tensor<B, 2>, v: Tensor<B, 2>, c: Tensor<B, 1>) -> Tensor<B, 2> {
    let sc = sqrt_c2(&c);
    // Clamped so the products with y (coordinates up to 4e13) stay finite.
    let v = join(time(&v).zeros_like(), clamp_tangent(space(&v)));
    let coef = dot(&space(&y), &space(&v)) * c2(&c) / (time(&y) * sc.clone()).add_scalar(1.0);
    let origin = join(sc.recip() * time(&y).ones_like(), space(&y).zeros_like());
    v + (origin + y) * coef
}
