//! The ternary layer in Burn tensor ops: what the default bodies of [`crate::RbeBackend`]
//! run for it, on backends without native kernels and for float dtypes the kernels do not
//! take. It decodes `W`; it is the portable path, not the fast one.

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Int, Tensor};
use rbe_kernels::{BlockLayout, Grads};

use super::levels;
use crate::formats::Wanted;
use crate::formats::sign::ops::{cells_to_matrix, matrix_to_cells};
use crate::primitive::{float, prim};

/// The dense `[rows, cols]` weight.
///
/// # Shapes
/// - `coords`: `[n_blocks, 2]`, `bits`: `[n_blocks, 4]`; returns `[rows, cols]`
pub(crate) fn decode<B: Backend>(
    coords: FloatTensor<B>,
    bits: Tensor<B, 2, Int>,
    layout: &BlockLayout,
) -> FloatTensor<B> {
    prim(cells_to_matrix(
        levels::cell_weights(float(coords), bits),
        layout,
    ))
}

/// `y = x W^T`.
///
/// # Shapes
/// - `x`: `[batch, cols]`, `coords`: `[n_blocks, 2]`, `bits`: `[n_blocks, 4]`; returns
///   `[batch, rows]`
pub(crate) fn forward<B: Backend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: Tensor<B, 2, Int>,
    layout: &BlockLayout,
) -> FloatTensor<B> {
    let w = float::<B, 2>(decode::<B>(coords, bits, layout));
    prim(float::<B, 2>(x).matmul(w.transpose()))
}

/// `dL/dx = G W`, `(dL/dalpha, 0)` and, when `wanted.signal`, `dW` per cell.
///
/// # Shapes
/// - `x`: `[batch, cols]`, `grad_y`: `[batch, rows]`, `coords`: `[n_blocks, 2]`, `bits`:
///   `[n_blocks, 4]`
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
            levels::cell_weights(float(coords.clone()), bits.clone()),
            layout,
        );
        prim(g.clone().matmul(w))
    });
    let signal = matrix_to_cells(g.transpose().matmul(x), layout);
    // w = alpha t is linear in alpha: its gradient projects dW on the levels.
    let d_alpha = (signal.clone() * levels::levels(bits)).sum_dim(1);
    let unused = d_alpha.zeros_like();
    Grads {
        x: grad_x,
        coords: prim(Tensor::cat(vec![d_alpha, unused], 1)),
        signal: wanted.signal.then(|| prim(signal)),
    }
}
