//! `tanh`, `artanh`, `sinh` and `asinh` that stay accurate near 0 on every backend.
//!
//! GPU math libraries compute these from `exp` and `ln` (WGSL on lavapipe does), e.g.
//! `artanh(z) = ln((1 + z)/(1 - z))/2`. Near 0 that cancels: in f32 `artanh(1e-15)` comes
//! out as exactly 0, so `artanh(|x|)/|x|` in the logarithmic map is 0 at the origin instead
//! of 1 and its gradient vanishes (the WGPU finite-difference test caught this). Below
//! [`SERIES_MAX`] the functions use their Taylor series `z(1 + a z^2 + b z^4)`, whose first
//! omitted term is below `1e-13` relative there, far under f32's resolution.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// `|z|` below which the series replaces the library function.
pub const SERIES_MAX: f64 = 1e-2;

/// `f(z)` where `|z| >= SERIES_MAX`, else `z(1 + a z^2 + b z^4)`.
///
/// The series sees `z` clamped to `±SERIES_MAX`, so where it is not selected its value and
/// derivative stay finite (a raw `z^5` of a large tangent norm would overflow, and autodiff
/// multiplies the unselected branch's derivative by a zero gradient: `0 * inf` is NaN).
fn odd_with_series<B: Backend, const D: usize>(
    z: Tensor<B, D>,
    f: impl FnOnce(Tensor<B, D>) -> Tensor<B, D>,
    a: f64,
    b: f64,
) -> Tensor<B, D> {
    let small = z.clone().abs().lower_elem(SERIES_MAX);
    let zs = z.clone().clamp(-SERIES_MAX, SERIES_MAX);
    let z2 = zs.clone().square();
    let series = zs * (z2.clone().mul_scalar(b).add_scalar(a) * z2).add_scalar(1.0);
    f(z).mask_where(small, series)
}

/// `tanh(z)`.
pub fn tanh<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    odd_with_series(z, |z| z.tanh(), -1.0 / 3.0, 2.0 / 15.0)
}

/// `artanh(z)` for `|z| < 1` (callers clamp).
pub fn atanh<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    odd_with_series(z, |z| z.atanh(), 1.0 / 3.0, 1.0 / 5.0)
}

/// `sinh(z)`.
pub fn sinh<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    odd_with_series(z, |z| z.sinh(), 1.0 / 6.0, 1.0 / 120.0)
}

/// `asinh(z)`.
pub fn asinh<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    odd_with_series(z, |z| z.asinh(), -1.0 / 6.0, 3.0 / 40.0)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    type B = crate::tests::Flex;

    /// Each function against f64 on both sides of the switch and at 0; the two branches
    /// meet continuously at `SERIES_MAX`.
    #[test]
    fn match_f64_across_the_switch() {
        let zs = [
            0.0, 1e-15, 1e-7, 1e-3, 0.0099, 0.01, 0.0101, 0.3, -0.005, -0.5,
        ];
        let device = Default::default();
        let input = || Tensor::<B, 1>::from_data(TensorData::from(zs.map(|z| z as f32)), &device);
        type Case = (&'static str, Tensor<B, 1>, fn(f64) -> f64);
        let cases: [Case; 4] = [
            ("tanh", tanh(input()), f64::tanh),
            ("atanh", atanh(input()), f64::atanh),
            ("sinh", sinh(input()), f64::sinh),
            ("asinh", asinh(input()), f64::asinh),
        ];
        for (name, got, want) in cases {
            let got = got.into_data().to_vec::<f32>().unwrap();
            for (z, g) in zs.iter().zip(got) {
                let w = want(f64::from(*z as f32));
                let err = (f64::from(g) - w).abs();
                assert!(err <= 1e-6 * w.abs() + 1e-30, "{name}({z}): {g} vs {w}");
            }
        }
    }
}
