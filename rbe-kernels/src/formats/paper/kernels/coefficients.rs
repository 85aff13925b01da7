//! Per-seed coefficients of the closed form (docs/math.md §3):
//! `a = A(r) cos(theta + c)`, `b = -A(r) sin(theta + c)` and their `r`-derivatives.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::basis::{basis_cos, basis_sin};
use super::constants::Cordic;
use crate::BlockLayout;
use crate::cube::launch::{KernelDtypes, arg, dims, elementwise, empty};

/// The per-seed coefficients and the block basis, both computed by one launch.
pub struct Coefficients<R: Runtime> {
    /// `[n_blocks, 4]`: `(a, b, da/dr, db/dr)` per seed.
    pub coef: TensorHandle<R>,
    /// `[2, br, bc]`: `C` then `S` (docs/math.md §3). Shared by every block, so the kernels
    /// read it instead of evaluating a square root and a division per multiply-add.
    pub basis: TensorHandle<R>,
}

/// Thread `p` writes the coefficients of seed `p` and the basis cell `p`; the basis is tiny
/// next to the seeds, so one launch covers both instead of a second one for the table.
/// Output row `s`: `(a, b, da/dr, db/dr)`; `d/dtheta` needs nothing more, since
/// `da/dtheta = b` and `db/dtheta = -a`.
#[cube(launch)]
fn seed_coefficients_kernel<F: Float, I: Int>(
    coords: &Tensor<F>,
    bits: &Tensor<I>,
    coef: &mut Tensor<F>,
    basis: &mut Tensor<F>,
    br: u32,
    bc: u32,
    #[comptime] cordic: Cordic,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let p = ABSOLUTE_POS;
    let cells = basis.len() / 2;
    if p < cells {
        let i = (p / bc as usize) as u32;
        let j = (p % bc as usize) as u32;
        basis[p] = basis_cos::<F>(i, j, br, bc);
        basis[cells + p] = basis_sin::<F>(i, j, br, bc);
    }
    if p >= coef.shape(0) {
        terminate!();
    }
    let s = p;
    let r = coords[s * 2];
    let theta = coords[s * 2 + 1];
    // Column 1 holds hi[31:0] as an i32 bit pattern; the cast keeps the bits.
    let rotations = u32::cast_from(bits[s * 2 + 1]);

    // The radius map F(r) and its derivative (docs/math.md §3, §4). A loop rather than
    // unrolled: unrolling lets the compiler refold the stretches, which measurably moved
    // the rounding against the f64 reference.
    let mut rho = r;
    let mut slope = F::new(1.0);
    let mut quarter = F::new(1.0);
    for k in 0..cordic.steps {
        let gain = F::sqrt(F::new(1.0) + quarter);
        rho *= gain;
        slope *= gain;
        if k % cordic.tanh_every == 0u32 {
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
    for k in 0..cordic.steps {
        let mut step = F::new(comptime!(Cordic::angle(k)));
        if (rotations >> k) & 1u32 == 0u32 {
            step = -step;
        }
        let y = step - carry;
        let t = phase + y;
        carry = (t - phase) - y;
        phase = t;
    }
    let angle = theta + phase;

    let gain = F::new(comptime!(cordic.gain()));
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

/// `(a, b, da/dr, db/dr)` per seed and the basis table of `layout`'s blocks, in one launch.
///
/// Reference: [`crate::formats::paper::reference::coefficients`], [`crate::formats::paper::reference::amplitude_derivative`],
/// [`crate::formats::paper::reference::basis`].
///
/// # Shapes
/// - `coords`: `[n, 2]` `(r, theta)`; `bits`: `[n, 2]` (`hi` as i32 halves)
/// - returns `coef` `[n, 4]` and `basis` `[2, br, bc]`
pub fn seed_coefficients<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
) -> Coefficients<R> {
    let n = coords.shape()[0];
    let [_, _, br, bc, _] = dims(layout);
    let basis_shape = [2, layout.block_rows, layout.block_cols];
    let coef = empty(client, &[n, 4], dtypes.float);
    let basis = empty(client, &basis_shape, dtypes.float);
    let (count, dim) = elementwise(client, n.max(layout.block_rows * layout.block_cols));
    seed_coefficients_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(coords, &[n, 2]),
        arg(bits, &[n, 2]),
        arg(&coef, &[n, 4]),
        arg(&basis, &basis_shape),
        br,
        bc,
        Cordic::PAPER,
        dtypes.both(),
    );
    Coefficients { coef, basis }
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::cube::test_utils::TestEnv;
    use crate::formats::paper::reference::{amplitude_derivative, basis, coefficients, phase};
    use crate::testing::{PaperSeeds, assert_close, rng};

    #[test]
    fn constants_come_from_the_reference() {
        let c = Cordic::PAPER;
        assert_eq!((c.steps, c.tanh_every), (20, 4));
        assert_eq!(c.gain(), 1.64676f32);
        assert_eq!(Cordic::angle(0), std::f32::consts::FRAC_PI_4);
    }

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(101);
        // The basis table is larger than the seeds in the first case and smaller in the last.
        for (n, br, bc) in [(1usize, 5, 3), (7, 1, 9), (300, 8, 8)] {
            let layout = BlockLayout::new(br, bc * n, br, bc).unwrap();
            let seeds = PaperSeeds::random(&mut rng, n);
            let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
            let out = seed_coefficients(&env.client, env.dtypes, &coords, &bits, &layout);
            let mut want_basis = vec![0.0; 2 * br * bc];
            for i in 0..br {
                for j in 0..bc {
                    let (c, s) = basis(i, j, br, bc);
                    want_basis[i * bc + j] = c;
                    want_basis[br * bc + i * bc + j] = s;
                }
            }
            assert_close(&env.read(&out.basis), &want_basis, 1e-6, "basis");
            let got = env.read(&out.coef);
            let want: Vec<f64> = seeds
                .params
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
