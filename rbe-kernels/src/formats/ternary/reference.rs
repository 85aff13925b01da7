//! Decode, forward and backward of a ternary layer in f64 (docs/math.md §10): the oracle
//! every kernel is tested against.

use super::seed::{TERNARY_CELLS, TernaryParams, check_seeds};
use crate::{BlockLayout, Grads, KernelError};

/// Decodes ternary seeds into the dense `[rows, cols]` matrix (row-major), `w = alpha * t`.
/// Edge blocks are cropped: cells outside the matrix are never read.
///
/// Takes stored seeds ([`Packed128`](crate::Packed128), `&Packed128`) or their f64 form
/// (`&TernaryParams`).
///
/// # Shapes
/// - `seeds`: `[layout.num_blocks()]`, block-row-major.
/// - returns `[layout.rows * layout.cols]`.
///
/// # Errors
/// Blocks over 64 cells, a wrong seed count, or an invalid seed (see
/// [`unpack`](super::unpack)).
pub fn decode_dense<S: Copy + TryInto<TernaryParams, Error = KernelError>>(
    seeds: &[S],
    layout: &BlockLayout,
) -> Result<Vec<f64>, KernelError> {
    let seeds = check_seeds(seeds, layout)?;
    Ok(decode_checked(&seeds, layout))
}

/// [`decode_dense`] on seeds already checked.
pub(super) fn decode_checked(seeds: &[TernaryParams], layout: &BlockLayout) -> Vec<f64> {
    let mut w = vec![0.0; layout.rows * layout.cols];
    for row in 0..layout.rows {
        for col in 0..layout.cols {
            let (s, i, j) = layout.locate(row, col);
            w[row * layout.cols + col] = seeds[s].weight(i * layout.block_cols + j);
        }
    }
    w
}

/// The forward of a layer `y = x W^T`, `W` decoded from ternary seeds.
///
/// # Shapes
/// - `seeds`: `[layout.num_blocks()]`, block-row-major.
/// - `x`: `[batch, layout.cols]`
/// - returns `[batch, layout.rows]`
pub fn forward<S: Copy + TryInto<TernaryParams, Error = KernelError>>(
    seeds: &[S],
    layout: &BlockLayout,
    x: &[f64],
    batch: usize,
) -> Result<Vec<f64>, KernelError> {
    let seeds = check_seeds(seeds, layout)?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    let w = decode_checked(&seeds, layout);
    let (rows, cols) = (layout.rows, layout.cols);
    let mut y = vec![0.0; batch * rows];
    for n in 0..batch {
        for o in 0..rows {
            y[n * rows + o] = (0..cols).map(|k| x[n * cols + k] * w[o * cols + k]).sum();
        }
    }
    Ok(y)
}

/// The backward of a ternary `y = x W^T` given `g = dL/dy`.
///
/// The levels are discrete and have no gradient; the signal carries `dL/dw` per cell for
/// straight-through training.
///
/// # Shapes
/// - `seeds`: `[layout.num_blocks()]`, block-row-major.
/// - `x`: `[batch, layout.cols]`, `g`: `[batch, layout.rows]`
/// - returns [`Grads`], every field computed:
///   - `x`: `Some(dL/dx = G W)`, `[batch, layout.cols]`;
///   - `coords`: `[n_blocks, 2]`, per seed `(dL/dalpha, 0)` with
///     `dL/dalpha = Σ dW_ij t_ij` over the block's cells inside the matrix (the second
///     column is unused by the format);
///   - `signal`: `Some` of `dW = G^T x` per seed and cell, `[n_blocks, 64]`, cell `(i, j)`
///     at `i * block_cols + j`; zero for cells cropped by the matrix edge and beyond the
///     block.
pub fn backward<S: Copy + TryInto<TernaryParams, Error = KernelError>>(
    seeds: &[S],
    layout: &BlockLayout,
    x: &[f64],
    g: &[f64],
    batch: usize,
) -> Result<Grads<Vec<f64>>, KernelError> {
    let seeds = check_seeds(seeds, layout)?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("grad_output", g.len(), batch * layout.rows)?;
    let (rows, cols) = (layout.rows, layout.cols);
    let w = decode_checked(&seeds, layout);

    let mut grad_x = vec![0.0; batch * cols];
    for n in 0..batch {
        for k in 0..cols {
            grad_x[n * cols + k] = (0..rows).map(|o| g[n * rows + o] * w[o * cols + k]).sum();
        }
    }

    let mut grad_coords = vec![0.0; 2 * seeds.len()];
    let mut cell_signal = vec![0.0; TERNARY_CELLS * seeds.len()];
    for row in 0..rows {
        for col in 0..cols {
            // w = alpha t is linear in alpha: its gradient projects dW on the levels.
            let d: f64 = (0..batch)
                .map(|n| g[n * rows + row] * x[n * cols + col])
                .sum();
            let (s, i, j) = layout.locate(row, col);
            let k = i * layout.block_cols + j;
            grad_coords[2 * s] += d * seeds[s].level(k);
            cell_signal[TERNARY_CELLS * s + k] = d;
        }
    }

    Ok(Grads {
        x: Some(grad_x),
        coords: grad_coords,
        signal: Some(cell_signal),
    })
}
