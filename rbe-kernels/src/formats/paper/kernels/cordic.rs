//! The paper's weight by its CORDIC loop, as a device function (docs/math.md §2), and as
//! the weight source the shared tiled matmul generates its tiles with.

use cubecl::prelude::*;

use super::basis::{basis_cos, basis_sin};
use super::constants::Cordic;
use crate::cube::WeightSource;

/// The weight at in-block `(i, j)` of a `br x bc` block for seed `(r, theta, rotations)`.
///
/// Reference: [`crate::formats::paper::reference::cordic_weight`].
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

/// The paper's weight as the tiled matmul's [`WeightSource`]: [`cordic_weight`] of the
/// seed's `(r, theta)` and its CORDIC bits (`hi[31:0]`, column 1 of `bits`), with the
/// CORDIC schedule as the comptime configuration.
pub(super) struct CordicWeight;

#[cube]
impl WeightSource for CordicWeight {
    type Config = Cordic;

    fn weight<F: Float, I: Int>(
        coords: &Tensor<F>,
        bits: &Tensor<I>,
        s: usize,
        i: usize,
        j: usize,
        br: usize,
        bc: usize,
        #[comptime] config: Cordic,
    ) -> F {
        cordic_weight::<F>(
            coords[s * 2],
            coords[s * 2 + 1],
            u32::cast_from(bits[s * 2 + 1]),
            i as u32,
            j as u32,
            br as u32,
            bc as u32,
            config,
        )
    }
}
