//! The sign-blueprint layer in Burn tensor ops: what the default bodies of
//! [`crate::RbeBackend`] run for it, on backends without native kernels and for float
//! dtypes the kernels do not take. Unlike the kernels it decodes `W`; it is the portable path, not the fast one.

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor};
use rbe_kernels::formats::sign::SIGN_CELLS;
use rbe_kernels::{BlockLayout, Grads};

use super::cells;
use crate::formats::Wanted;
use crate::primitive::{float, prim};

/// Cell values `[n_blocks, 64]` laid out as the `[rows, cols]` matrix.
pub(crate) fn cells_to_matrix<B: Backend>(
    cells: Tensor<B, 2>,
    layout: &BlockLayout,
) -> Tensor<B, 2> {
    let (br, bc) = (layout.block_rows, layout.block_cols);
    let (rb, cb) = (layout.row_blocks(), layout.col_blocks());
    let n = cells.dims()[0];
    cells
        .slice([0..n, 0..br * bc])
        .reshape([rb, cb, br, bc])
        .swap_dims(1, 2)
        .reshape([rb * br, cb * bc])
        .slice([0..layout.rows, 0..layout.cols])
}

/// Inverse of [`cells_to_matrix`]: cells outside the matrix and bits beyond the block are 0.
pub(crate) fn matrix_to_cells<B: Backend>(m: Tensor<B, 2>, layout: &BlockLayout) -> Tensor<B, 2> {
    let (br, bc) = (layout.block_rows, layout.block_cols);
    let (rb, cb) = (layout.row_blocks(), layout.col_blocks());
    let device = m.device();
    let padded = Tensor::<B, 2>::zeros([rb * br, cb * bc], &device)
        .slice_assign([0..layout.rows, 0..layout.cols], m);
    let blocks = padded
        .reshape([rb, br, cb, bc])
        .swap_dims(1, 2)
        .reshape([rb * cb, br * bc]);
    Tensor::zeros([rb * cb, SIGN_CELLS], &device).slice_assign([0..rb * cb, 0..br * bc], blocks)
}

/// The dense `[rows, cols]` weight.
pub(crate) fn decode<B: Backend>(
    coords: FloatTensor<B>,
    bits: Tensor<B, 2, Int>,
    layout: &BlockLayout,
) -> FloatTensor<B> {
    prim(cells_to_matrix(
        cells::cell_weights(float(coords), bits),
        layout,
    ))
}

/// `y = x W^T`.
///
/// # Shapes
/// - `x`: `[batch, cols]`; returns `[batch, rows]`
pub(crate) fn forward<B: Backend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: Tensor<B, 2, Int>,
    layout: &BlockLayout,
) -> FloatTensor<B> {
    let w = float::<B, 2>(decode::<B>(coords, bits, layout));
    prim(float::<B, 2>(x).matmul(w.transpose()))
}

/// `dL/dx = G W`, `dL/d(alpha, mu)` and, when `wanted.signal`, `dW` per cell.
///
/// # Shapes
/// - `x`: `[batch, cols]`, `grad_y`: `[batch, rows]`
pub(crate) fn backward<B: Backend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: Tensor<B, 2, Int>,
    grad_y: FloatTensor<B>,
    layout: &BlockLayout,
    wanted: Wanted,
) -> Grads<FloatTensor<B>> {
    let (x, g) = (float::<B, 2>(x), float::<B, 2>(grad_y));
    let grad_x = wanted.x.then(|| {
        let w = cells_to_matrix(
            cells::cell_weights(float(coords.clone()), bits.clone()),
            layout,
        );
        prim(g.clone().matmul(w))
    });
    let signal = matrix_to_cells(g.transpose().matmul(x), layout);
    // w is linear in alpha and mu: their gradients project dW on the signs and on ones.
    let d_alpha = (signal.clone() * cells::signs(bits)).sum_dim(1);
    let d_mu = signal.clone().sum_dim(1);
    Grads {
        x: grad_x,
        coords: prim(Tensor::cat(vec![d_alpha, d_mu], 1)),
        signal: wanted.signal.then(|| prim(signal)),
    }
}
