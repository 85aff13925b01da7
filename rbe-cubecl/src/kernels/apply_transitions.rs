//! The state transitions applied to the seed bits (docs/math.md §5): each 2-bit slot `s`
//! (bits `2s, 2s+1` of `hi[31:0]`) moves by its net count modulo 4; every other bit is kept.
//! One launch, where the tensor-op fallback needs about thirty.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::launch::{KernelDtypes, arg, elementwise, empty};

/// One thread per seed.
#[cube(launch)]
fn apply_transitions_kernel<F: Float, I: Int>(
    bits: &Tensor<I>,
    counts: &Tensor<F>,
    out: &mut Tensor<I>,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let s = ABSOLUTE_POS;
    if s >= out.shape(0) {
        terminate!();
    }
    // Column 1 holds hi[31:0] as an i32 bit pattern (sign-extended in wider int types);
    // the u32 cast keeps the low 32 bits.
    let low = u32::cast_from(bits[s * 2 + 1]);
    let mut moved = low & 0xFFFF_FF00u32;
    #[unroll]
    for slot in 0..4u32 {
        let shift = comptime!(2 * slot);
        let column = comptime!(slot as usize);
        // Two's complement makes `& 3` the non-negative remainder of a negative count.
        let count = u32::cast_from(i32::cast_from(counts[s * 4 + column]));
        let state = (low >> shift) & 3u32;
        moved |= ((state + count) & 3u32) << shift;
    }
    out[s * 2] = bits[s * 2];
    // Back through i32 so wider int types get the sign extension the input had.
    out[s * 2 + 1] = I::cast_from(i32::cast_from(moved));
}

/// The bits after the transitions: column 0 copied, column 1's low byte moved.
///
/// Reference: [`crate::reference::apply_transition_counts`].
///
/// # Shapes
/// - `bits`: `[n, 2]` (`hi` as i32 halves); `counts`: `[n, 4]` integer-valued floats
/// - returns `[n, 2]`
pub fn apply_transitions<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    bits: &TensorHandle<R>,
    counts: &TensorHandle<R>,
) -> TensorHandle<R> {
    let n = bits.shape()[0];
    let out = empty(client, &[n, 2], dtypes.int);
    let (count, dim) = elementwise(client, n);
    apply_transitions_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(bits, &[n, 2]),
        arg(counts, &[n, 4]),
        arg(&out, &[n, 2]),
        dtypes.both(),
    );
    out
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::kernels::test_utils::*;
    use crate::reference::apply_transition_counts;
    use rand::Rng;

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(110);
        for n in [1usize, 5, 300] {
            let seeds = random_seeds(&mut rng, n);
            // Counts beyond +-4 and of both signs, and a zero, exercise the modulo.
            let counts: Vec<[i32; 4]> = (0..n)
                .map(|k| {
                    if k == 0 {
                        [0; 4]
                    } else {
                        [0; 4].map(|_| rng.random_range(-300..300))
                    }
                })
                .collect();
            let (_, bits) = env.seeds(&seeds);
            let flat: Vec<f64> = counts.iter().flatten().map(|&c| f64::from(c)).collect();
            let ct = env.floats(&flat, &[n, 4]);
            let got = env.read_ints(&apply_transitions(&env.client, env.dtypes, &bits, &ct));
            let before = env.read_ints(&bits);
            for s in 0..n {
                let hi =
                    (u64::from(before[2 * s] as u32) << 32) | u64::from(before[2 * s + 1] as u32);
                let want = apply_transition_counts(hi, counts[s]);
                assert_eq!(got[2 * s], before[2 * s], "seed {s}: high half");
                assert_eq!(got[2 * s + 1] as u32, want as u32, "seed {s}: low half");
            }
        }
    }
}
