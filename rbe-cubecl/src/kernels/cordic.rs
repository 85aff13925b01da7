//! The paper's weight by its CORDIC loop, as a device function (docs/math.md §2).

use cubecl::prelude::*;

use super::basis::{basis_cos, basis_sin};
use super::constants::Cordic;

/// The weight at in-block `(i, j)` of a `br x bc` block for seed `(r, theta, rotations)`.
///
/// Reference: [`crate::reference::cordic_weight`].
#[cube]
pub fn cordic_weight<F: Float>(
    r: F,
    theta: F,
    rotations: u32,
    i: u32,
    j: u32,
    br: u32,
    bc: u32,
    #[comptime] cordic: Cordic,
) -> F {
    let c = basis_cos::<F>(i, j, br, bc);
    let s = basis_sin::<F>(i, j, br, bc);
    let cos_t = F::cos(theta);
    let sin_t = F::sin(theta);
    // (x, y) = r (cos(psi + theta), sin(psi + theta)) by the angle-sum identities.
    let mut x = r * (c * cos_t - s * sin_t);
    let mut y = r * (s * cos_t + c * sin_t);
    // Unrolled: the step sizes 2^-k and the squash steps are compile-time constants.
    #[unroll]
    for k in 0..cordic.steps {
        let step = F::new(comptime!(Cordic::step(k)));
        let mut sp = -step;
        if (rotations >> k) & 1u32 == 1u32 {
            sp = step;
        }
        let nx = x - sp * y;
        let ny = y + sp * x;
        x = nx;
        y = ny;
        if comptime!(cordic.squashes(k)) {
            let rho = F::sqrt(x * x + y * y);
            if rho > F::new(1e-9) {
                let scale = F::tanh(rho) / rho;
                x *= scale;
                y *= scale;
            }
        }
    }
    x / F::new(comptime!(cordic.gain()))
}
