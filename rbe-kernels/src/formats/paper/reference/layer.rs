use super::decode::check_seeds;
use super::{SeedParams, decode_closed_form, transition_counts, weight_grad_r, weight_grad_theta};
use crate::{BlockLayout, Grads, KernelError};

/// The forward of a layer `y = x W^T` with `W` decoded from the seeds (closed form).
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`
/// - returns `[batch, layout.rows]`
pub fn layer_forward(
    seeds: &[SeedParams],
    layout: &BlockLayout,
    x: &[f64],
    batch: usize,
) -> Result<Vec<f64>, KernelError> {
    check_seeds(seeds, layout)?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    let w = decode_closed_form(seeds, layout)?;
    let mut y = vec![0.0; batch * layout.rows];
    for n in 0..batch {
        for o in 0..layout.rows {
            y[n * layout.rows + o] = (0..layout.cols)
                .map(|k| x[n * layout.cols + k] * w[o * layout.cols + k])
                .sum();
        }
    }
    Ok(y)
}

/// The backward of `y = x W^T` given `g = dL/dy`, with the net transition counts of the
/// signal `dW = G^T x` against `threshold`.
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`, `g`: `[batch, layout.rows]`
/// - returns [`Grads`], every field computed:
///   - `x`: `Some(dL/dx = G W)`, `[batch, layout.cols]`;
///   - `coords`: `[n_blocks, 2]`, per seed `(dL/dr, dL/dtheta)` =
///     `(<dW_IJ, dw/dr>, <dW_IJ, dw/dtheta>)`;
///   - `signal`: `Some` of the net transition counts, `[n_blocks, 4]` (slot fastest), small
///     integers held exactly as f64.
pub fn layer_backward(
    seeds: &[SeedParams],
    layout: &BlockLayout,
    x: &[f64],
    g: &[f64],
    batch: usize,
    threshold: f64,
) -> Result<Grads<Vec<f64>>, KernelError> {
    check_seeds(seeds, layout)?;
    KernelError::check_len("x", x.len(), batch * layout.cols)?;
    KernelError::check_len("grad_output", g.len(), batch * layout.rows)?;
    let (rows, cols) = (layout.rows, layout.cols);
    let w = decode_closed_form(seeds, layout)?;

    let mut grad_x = vec![0.0; batch * cols];
    for n in 0..batch {
        for k in 0..cols {
            grad_x[n * cols + k] = (0..rows).map(|o| g[n * rows + o] * w[o * cols + k]).sum();
        }
    }

    let mut dw = vec![0.0; rows * cols];
    for o in 0..rows {
        for k in 0..cols {
            dw[o * cols + k] = (0..batch).map(|n| g[n * rows + o] * x[n * cols + k]).sum();
        }
    }

    let (br, bc) = (layout.block_rows, layout.block_cols);
    // Interleaved (r, theta) per seed.
    let mut grad_coords = vec![0.0; 2 * seeds.len()];
    for row in 0..rows {
        for col in 0..cols {
            let (s, i, j) = layout.locate(row, col);
            let d = dw[row * cols + col];
            grad_coords[2 * s] += d * weight_grad_r(seeds[s], i, j, br, bc);
            grad_coords[2 * s + 1] += d * weight_grad_theta(seeds[s], i, j, br, bc);
        }
    }

    let counts = (0..seeds.len())
        .flat_map(|s| {
            let (bi, bj) = (s / layout.col_blocks(), s % layout.col_blocks());
            transition_counts(br, bc, threshold, |i, j| {
                let (row, col) = (bi * br + i, bj * bc + j);
                if row < rows && col < cols {
                    dw[row * cols + col]
                } else {
                    0.0
                }
            })
            .map(f64::from)
        })
        .collect();

    Ok(Grads {
        x: Some(grad_x),
        coords: grad_coords,
        signal: Some(counts),
    })
}
