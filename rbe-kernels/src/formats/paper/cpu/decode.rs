//! The dense weight, for inspection and tests only (layers never form it).

use rayon::prelude::*;

use super::{Coefficients, basis};
use crate::{BlockLayout, KernelError};

/// `W[row, col] = a C(i, j) + b S(i, j)` of the seed covering the cell (docs/math.md §3).
///
/// # Shapes
/// - `coords`, `bits`: `[n_blocks, 2]` (see [`super::Coefficients::decode`])
/// - returns `[layout.rows, layout.cols]`, row-major
pub fn decode(layout: &BlockLayout, coords: &[f32], bits: &[i32]) -> Result<Vec<f32>, KernelError> {
    KernelError::check_len("coords", coords.len(), 2 * layout.num_blocks())?;
    let coefficients = Coefficients::decode(coords, bits)?;
    let basis = basis::basis(layout.block_rows, layout.block_cols);
    let (br, bc, nj, cols) = (
        layout.block_rows,
        layout.block_cols,
        layout.col_blocks(),
        layout.cols,
    );
    let ab = coefficients.ab();
    let mut w = vec![0.0; layout.rows * cols];
    w.par_chunks_mut(cols.max(1))
        .enumerate()
        .for_each(|(row, out)| {
            let (bi, i) = (row / br, row % br);
            let (c, s) = (&basis.cos()[i * bc..][..bc], &basis.sin()[i * bc..][..bc]);
            for (bj, block) in out.chunks_mut(bc).enumerate() {
                let (a, b) = (ab[2 * (bi * nj + bj)], ab[2 * (bi * nj + bj) + 1]);
                for (j, v) in block.iter_mut().enumerate() {
                    *v = a * c[j] + b * s[j];
                }
            }
        });
    Ok(w)
}
