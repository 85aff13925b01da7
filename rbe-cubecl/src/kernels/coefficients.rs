//! Per-seed coefficients of the closed form (docs/math.md §3):
//! `a = A(r) cos(theta + c)`, `b = -A(r) sin(theta + c)` and their `r`-derivatives.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::launch::{KernelDtypes, arg, elementwise, empty};

/// `atan(2^-k)` rounded to f32, the rotation angle of CORDIC step `k`.
const CORDIC_ANGLES: [f32; 20] = [
    7.853_982e-1,
    4.636_476e-1,
    2.449_786_7e-1,
    1.243_549_96e-1,
    6.241_881e-2,
    3.123_983_4e-2,
    1.562_372_9e-2,
    7.812_341e-3,
    3.906_230_2e-3,
    1.953_122_6e-3,
    9.765_622e-4,
    4.882_812_2e-4,
    2.441_406_2e-4,
    1.220_703_1e-4,
    6.103_515_6e-5,
    3.051_757_8e-5,
    1.525_878_9e-5,
    7.629_394_5e-6,
    3.814_697_3e-6,
    1.907_348_6e-6,
];

/// One thread per seed. Output row `s`: `(a, b, da/dr, db/dr)`; `d/dtheta` needs nothing
/// more, since `da/dtheta = b` and `db/dtheta = -a`.
#[cube(launch)]
fn seed_coefficients_kernel<F: Float, I: Int>(
    coords: &Tensor<F>,
    bits: &Tensor<I>,
    coef: &mut Tensor<F>,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let s = ABSOLUTE_POS;
    if s >= coef.shape(0) {
        terminate!();
    }
    let r = coords[s * 2];
    let theta = coords[s * 2 + 1];
    // Column 1 holds hi[31:0] as an i32 bit pattern; the cast keeps the bits.
    let rotations = u32::cast_from(bits[s * 2 + 1]);

    // The radius map F(r) and its derivative: gains sqrt(1 + 4^-k), tanh every 4th step.
    let mut rho = r;
    let mut slope = F::new(1.0);
    let mut quarter = F::new(1.0);
    for k in 0..20u32 {
        let gain = F::sqrt(F::new(1.0) + quarter);
        rho *= gain;
        slope *= gain;
        if k % 4u32 == 0u32 {
            let t = F::tanh(rho);
            slope *= F::new(1.0) - t * t;
            rho = t;
        }
        quarter *= F::new(0.25);
    }

    // c = sum_k s_k atan(2^-k), summed apart from theta and Kahan-compensated: the phase
    // enters every weight of the block, so its rounding should stay near one ulp.
    let mut phase = F::new(0.0);
    let mut carry = F::new(0.0);
    #[unroll]
    for k in 0..20u32 {
        let mut step = F::new(comptime!(CORDIC_ANGLES[k as usize]));
        if (rotations >> k) & 1u32 == 0u32 {
            step = -step;
        }
        let y = step - carry;
        let t = phase + y;
        carry = (t - phase) - y;
        phase = t;
    }
    let angle = theta + phase;

    let gain = F::new(1.64676);
    let cos = F::cos(angle);
    let sin = F::sin(angle);
    let amp = rho / gain;
    let amp_d = slope / gain;
    let o = s * 4;
    coef[o] = amp * cos;
    coef[o + 1] = -amp * sin;
    coef[o + 2] = amp_d * cos;
    coef[o + 3] = -amp_d * sin;
}

/// `(a, b, da/dr, db/dr)` per seed.
///
/// Reference: [`crate::reference::coefficients`], [`crate::reference::amplitude_derivative`].
///
/// # Shapes
/// - `coords`: `[n, 2]` `(r, theta)`; `bits`: `[n, 2]` (`hi` as i32 halves)
/// - returns `[n, 4]`
pub fn seed_coefficients<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
) -> TensorHandle<R> {
    let n = coords.shape()[0];
    let coef = empty(client, &[n, 4], dtypes.float);
    let (count, dim) = elementwise(client, n);
    seed_coefficients_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(coords, &[n, 2]),
        arg(bits, &[n, 2]),
        arg(&coef, &[n, 4]),
        dtypes.both(),
    );
    coef
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::kernels::test_utils::*;
    use crate::reference::{amplitude_derivative, coefficients, phase};

    #[test]
    fn angle_table_is_atan_of_powers_of_two() {
        for (k, &angle) in CORDIC_ANGLES.iter().enumerate() {
            assert_eq!(angle, (-(k as f64)).exp2().atan() as f32, "step {k}");
        }
    }

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(101);
        for n in [1usize, 7, 300] {
            let seeds = random_seeds(&mut rng, n);
            let (coords, bits) = env.seeds(&seeds);
            let got = env.read(&seed_coefficients(&env.client, env.dtypes, &coords, &bits));
            let want: Vec<f64> = seeds
                .iter()
                .flat_map(|&p| {
                    let (a, b) = coefficients(p);
                    let angle = p.theta + phase(p.rotations);
                    let d = amplitude_derivative(p.r);
                    [a, b, d * angle.cos(), -d * angle.sin()]
                })
                .collect();
            assert_close(&got, &want, 1e-5, "coefficients");
        }
    }
}
