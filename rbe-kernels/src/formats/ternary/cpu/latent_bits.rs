//! The straight-through levels of ternary seeds, re-derived from their latent weights in one
//! native pass: each cell's nearest level becomes its 2-bit code in the block's four device
//! words.

use rayon::prelude::*;

use crate::formats::sign::valid_mask;
use crate::formats::ternary::{TERNARY_BIT_WORDS, TERNARY_CELLS, check_block};
use crate::{BlockLayout, KernelError};

/// Blocks below which the pass stays on the calling thread; also the blocks per task.
const PARALLEL_BLOCKS: usize = 4096;

/// Cells per device word.
const PER_WORD: usize = TERNARY_CELLS / TERNARY_BIT_WORDS;

/// The device codes of every block from its latent weights: a cell inside the matrix is
/// `+1` (code `01`) when `latent > alpha / 2`, `-1` (code `10`) when `latent < -alpha / 2`,
/// else `0`; cells outside the matrix are `0`. A NaN latent weight or `alpha` gives `0`.
///
/// This is the rule of the format's tensor-op layer (`rbe_burn`'s `ternary::levels`), bit for
/// bit, and [`crate::formats::ternary::nearest_level`] per cell, the reference.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]` = `(alpha, 0)`; `latent`: `[n_blocks, 64]`, cell `(i, j)` of a
///   block at column `i * block_cols + j`
/// - returns `[n_blocks, 4]`, cell `k` at bits `2 (k % 16)` of word `k / 16`
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
    KernelError::check_len("latent", latent.len(), TERNARY_CELLS * n)?;
    let mut bits = vec![0i32; TERNARY_BIT_WORDS * n];
    let block = |s: usize, out: &mut [i32]| {
        let half = coords[2 * s] * 0.5;
        let mask = valid_mask(layout, s);
        let cells = &latent[TERNARY_CELLS * s..TERNARY_CELLS * (s + 1)];
        for (w, (word, cells)) in out.iter_mut().zip(cells.chunks_exact(PER_WORD)).enumerate() {
            let inside = (mask >> (w * PER_WORD)) as u32;
            // Branch-free, so that the comparisons vectorise.
            let codes = cells.iter().enumerate().fold(0u32, |acc, (k, &l)| {
                let code = u32::from(l > half) | u32::from(l < -half) << 1;
                acc | (code * (inside >> k & 1)) << (2 * k)
            });
            *word = codes as i32;
        }
    };
    if n < PARALLEL_BLOCKS {
        bits.chunks_exact_mut(TERNARY_BIT_WORDS)
            .enumerate()
            .for_each(|(s, out)| block(s, out));
    } else {
        bits.par_chunks_exact_mut(TERNARY_BIT_WORDS)
            .enumerate()
            .with_min_len(PARALLEL_BLOCKS)
            .for_each(|(s, out)| block(s, out));
    }
    Ok(bits)
}
