//! The straight-through bits of sign-blueprint seeds, re-derived from their latent weights
//! in one native pass: each block's 64 comparisons fold into its two device words.

use rayon::prelude::*;

use crate::formats::sign::{SIGN_CELLS, check_block, valid_mask};
use crate::{BlockLayout, KernelError};

/// Blocks below which the pass stays on the calling thread; also the blocks per task.
const PARALLEL_BLOCKS: usize = 4096;

/// The device bits of every block from its latent weights: cell `k` of block `s` is 1 when it
/// lies inside the matrix and `latent[s, k] >= mu_s`; every other bit is 0. A comparison with
/// a NaN is false, so a NaN latent weight gives a 0 bit.
///
/// This is the rule of the format's tensor-op layer (`rbe_burn`'s `sign::cells`), bit for bit,
/// whatever the sign of `alpha`; for `alpha >= 0`, which the format's constraint keeps, it is
/// also [`crate::formats::sign::latent_to_seed`], the reference.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]` = `(alpha, mu)`; `latent`: `[n_blocks, 64]`, cell `(i, j)` of a
///   block at column `i * block_cols + j`
/// - returns `[n_blocks, 2]` = `(hi[63:32], hi[31:0])` as i32 bit patterns
///
/// # Errors
/// Blocks of more than 64 cells, or slices whose lengths do not match the layout.
pub fn latent_bits(
    layout: &BlockLayout,
    coords: &[f32],
    latent: &[f32],
) -> Result<Vec<i32>, KernelError> {
    check_block(layout)?;
    let n = layout.num_blocks();
    KernelError::check_len("coords", coords.len(), 2 * n)?;
    KernelError::check_len("latent", latent.len(), SIGN_CELLS * n)?;
    let mut bits = vec![0i32; 2 * n];
    let block = |s: usize, out: &mut [i32]| {
        let mu = coords[2 * s + 1];
        let cells = &latent[SIGN_CELLS * s..SIGN_CELLS * (s + 1)];
        // Branch-free, so that the 64 comparisons vectorise.
        let hi = cells
            .iter()
            .enumerate()
            .fold(0u64, |hi, (k, &l)| hi | u64::from(l >= mu) << k)
            & valid_mask(layout, s);
        out[0] = (hi >> 32) as u32 as i32;
        out[1] = hi as u32 as i32;
    };
    if n < PARALLEL_BLOCKS {
        bits.chunks_exact_mut(2)
            .enumerate()
            .for_each(|(s, out)| block(s, out));
    } else {
        bits.par_chunks_exact_mut(2)
            .enumerate()
            .with_min_len(PARALLEL_BLOCKS)
            .for_each(|(s, out)| block(s, out));
    }
    Ok(bits)
}
