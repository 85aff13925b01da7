//! The straight-through bits of sign-blueprint seeds, re-derived from their latent weights on
//! the device: one thread per device word, 32 comparisons each, no read-back.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::forward::assert_sign_block;
use crate::BlockLayout;
use crate::cube::launch::{KernelDtypes, arg, dims, elementwise, empty};
use crate::formats::sign::SIGN_CELLS;

/// Thread `t` writes word `t % 2` of seed `t / 2`: column 0 holds `hi[63:32]` (cells
/// `32..64`), column 1 `hi[31:0]` (cells `0..32`).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn sign_latent_bits_kernel<F: Float, I: Int>(
    latent: &Tensor<F>,
    coords: &Tensor<F>,
    bits: &mut Tensor<I>,
    rows: u32,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let t = ABSOLUTE_POS;
    if t >= bits.len() {
        terminate!();
    }
    let (rows, cols, br, bc, nj) = (
        rows as usize,
        cols as usize,
        br as usize,
        bc as usize,
        nj as usize,
    );
    let s = t / 2;
    let first = (1 - t % 2) * 32;
    let (row0, col0) = ((s / nj) * br, (s % nj) * bc);
    let mu = coords[s * 2 + 1];
    let mut word = 0u32;
    for c in 0..32usize {
        let k = first + c;
        let (i, j) = (k / bc, k % bc);
        // A NaN compares false, as in the tensor-op rule.
        if i < br && row0 + i < rows && col0 + j < cols && latent[s * 64 + k] >= mu {
            word |= 1u32 << (c as u32);
        }
    }
    // Through i32, so that a wider int dtype holds the same (sign-extended) pattern as the
    // tensor-op rule writes.
    bits[t] = I::cast_from(i32::cast_from(word));
}

/// The device bits of every block from its latent weights, as
/// [`crate::formats::sign::cpu::latent_bits`] computes them on the host: cell `k` is 1 when it
/// lies inside the matrix and `latent[s, k] >= mu_s`.
///
/// Reference: [`crate::formats::sign::latent_to_seed`] (for `alpha >= 0`).
///
/// # Shapes
/// - `latent`: `[n_blocks, 64]`; `coords`: `[n_blocks, 2]` = `(alpha, mu)`
/// - returns `[n_blocks, 2]` = `(hi[63:32], hi[31:0])` in `dtypes.int`
///
/// # Panics
/// When `layout.block_rows * layout.block_cols > 64`, or when a tensor is not contiguous with
/// the shape above.
pub fn latent_bits<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    latent: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    assert_sign_block(layout);
    let n = layout.num_blocks();
    let [rows, cols, br, bc, nj] = dims(layout);
    let bits = empty(client, &[n, 2], dtypes.int);
    let (count, dim) = elementwise(client, 2 * n);
    sign_latent_bits_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(latent, &[n, SIGN_CELLS]),
        arg(coords, &[n, 2]),
        arg(&bits, &[n, 2]),
        rows,
        cols,
        br,
        bc,
        nj,
        dtypes.both(),
    );
    bits
}
