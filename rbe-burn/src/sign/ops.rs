//! The sign-blueprint layer in Burn tensor ops: the body of the [`crate::RbeBackend`]
//! methods on backends without native kernels (and for float dtypes the kernels do not
//! take). Unlike the kernels it decodes `W`; it is the portable path, not the fast one.

use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{Int, Tensor};
use rbe_cubecl::BlockLayout;
use rbe_cubecl::sign_blueprint::SIGN_CELLS;

use super::cells;
use crate::fallback::{float, prim};
use crate::spec::{RbeGrads, RbeSpec};

/// Cell values `[n_blocks, 64]` laid out as the `[rows, cols]` matrix.
fn cells_to_matrix<B: Backend>(cells: Tensor<B, 2>, layout: &BlockLayout) -> Tensor<B, 2> {
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
fn matrix_to_cells<B: Backend>(m: Tensor<B, 2>, layout: &BlockLayout) -> Tensor<B, 2> {
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
    bits: IntTensor<B>,
    spec: &RbeSpec,
) -> FloatTensor<B> {
    let bits = Tensor::<B, 2, Int>::from_primitive(bits);
    prim(cells_to_matrix(
        cells::cell_weights(float(coords), bits),
        &spec.layout,
    ))
}

/// `y = x W^T`.
///
/// # Shapes
/// - `x`: `[batch, cols]`; returns `[batch, rows]`
pub(crate) fn forward<B: Backend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    spec: &RbeSpec,
) -> FloatTensor<B> {
    let w = float::<B, 2>(decode::<B>(coords, bits, spec));
    prim(float::<B, 2>(x).matmul(w.transpose()))
}

/// `dL/dx = G W`, `dL/d(alpha, mu)` and, with a threshold, `dW` per cell.
///
/// # Shapes
/// - `x`: `[batch, cols]`, `grad_y`: `[batch, rows]`
pub(crate) fn backward<B: Backend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    grad_y: FloatTensor<B>,
    spec: &RbeSpec,
    want_grad_x: bool,
) -> RbeGrads<B> {
    let layout = &spec.layout;
    let (x, g) = (float::<B, 2>(x), float::<B, 2>(grad_y));
    let bits = Tensor::<B, 2, Int>::from_primitive(bits);
    let grad_x = want_grad_x.then(|| {
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
    RbeGrads {
        x: grad_x,
        coords: prim(Tensor::cat(vec![d_alpha, d_mu], 1)),
        transitions: spec.transition_threshold.map(|_| prim(signal)),
    }
}
