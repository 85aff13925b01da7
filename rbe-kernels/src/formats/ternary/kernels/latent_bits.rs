//! The straight-through levels of ternary seeds, re-derived from their latent weights on the
//! device: one thread per device word, 16 cells each, no read-back.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::forward::assert_ternary_block;
use crate::BlockLayout;
use crate::cube::launch::{KernelDtypes, arg, dims, elementwise, empty};
use crate::formats::ternary::{TERNARY_BIT_WORDS, TERNARY_CELLS};

/// Thread `t` writes word `t % 4` of seed `t / 4`: cells `16 (t % 4) ..` at two bits each.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn ternary_latent_bits_kernel<F: Float, I: Int>(
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
    let s = t / 4;
    let first = (t % 4) * 16;
    let (row0, col0) = ((s / nj) * br, (s % nj) * bc);
    // `alpha * 0.5` as the tensor-op rule computes it, so that ties fall the same way.
    let half = coords[s * 2] * F::new(0.5);
    let mut word = 0u32;
    for c in 0..16usize {
        let k = first + c;
        let (i, j) = (k / bc, k % bc);
        if i < br && row0 + i < rows && col0 + j < cols {
            let l = latent[s * 64 + k];
            let shift = (2 * c) as u32;
            if l > half {
                word |= 1u32 << shift;
            } else if l < -half {
                word |= 2u32 << shift;
            }
        }
    }
    // Through i32, so that a wider int dtype holds the same (sign-extended) pattern as the
    // tensor-op rule writes.
    bits[t] = I::cast_from(i32::cast_from(word));
}

/// The device codes of every block from its latent weights, as
/// [`crate::formats::ternary::cpu::latent_bits`] computes them on the host: a cell inside the
/// matrix is `+1` when `latent > alpha / 2`, `-1` when `latent < -alpha / 2`, else `0`.
///
/// Reference: [`crate::formats::ternary::nearest_level`] per cell.
///
/// # Shapes
/// - `latent`: `[n_blocks, 64]`; `coords`: `[n_blocks, 2]` = `(alpha, 0)`
/// - returns `[n_blocks, 4]` in `dtypes.int`, cell `k` at bits `2 (k % 16)` of word `k / 16`
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
    assert_ternary_block(layout);
    let n = layout.num_blocks();
    let [rows, cols, br, bc, nj] = dims(layout);
    let bits = empty(client, &[n, TERNARY_BIT_WORDS], dtypes.int);
    let (count, dim) = elementwise(client, TERNARY_BIT_WORDS * n);
    ternary_latent_bits_kernel::launch::<R>(
        client,
        count,
        dim,
        arg(latent, &[n, TERNARY_CELLS]),
        arg(coords, &[n, 2]),
        arg(&bits, &[n, TERNARY_BIT_WORDS]),
        rows,
        cols,
        br,
        bc,
        nj,
        dtypes.both(),
    );
    bits
}
