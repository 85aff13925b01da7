//! The paper format's layer in Burn tensor operations: what the default bodies of
//! [`crate::RbeBackend`] run for it, on any backend and float dtype.
//!
//! It uses the closed form of docs/math.md §3 throughout: each block is `a*C + b*S`, so
//! the product factors into two small matmuls and the weight matrix is never formed.
//!
//! Index conventions: `nI x nJ` blocks of `br x bc`; `K = 2 J + cs` enumerates the
//! `(column block, cosine/sine)` pairs, matching `coef` of shape `[nI, 2 nJ]` whose columns
//! interleave `a` and `b`. With that order the projections `U` of a batch come out of the
//! first matmul as `[batch, 2 nJ, br]` and feed a batched matmul without any transposing
//! copy (such copies cost more than the matmuls themselves on NdArray).

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rbe_kernels::formats::paper::reference::{
    PHASE_TABLE_BITS, basis, folded_gains, phase_table, transition_slot,
};
use rbe_kernels::{BlockLayout, Grads};

use crate::formats::Wanted;
use crate::primitive::{float, prim};

/// [`phase_table`] rounded to f32 for a float tensor.
fn phase_table_f32(first: u32) -> Vec<f32> {
    phase_table(first).into_iter().map(|p| p as f32).collect()
}

/// Per-seed quantities of the closed form, each `[n_blocks]`.
pub(crate) struct SeedTerms<B: Backend> {
    /// `A(r)`.
    pub amp: Tensor<B, 1>,
    /// `A'(r)`, only when asked for.
    pub amp_d: Option<Tensor<B, 1>>,
    /// `theta + c(bits)`.
    pub angle: Tensor<B, 1>,
}

impl<B: Backend> SeedTerms<B> {
    /// Evaluates the radius map (and its derivative when `derivative`) and the CORDIC phase
    /// for every seed.
    pub fn new(coords: Tensor<B, 2>, bits: Tensor<B, 2, Int>, derivative: bool) -> Self {
        let n = coords.dims()[0];
        let device = coords.device();
        // Rows of the transpose are cheap views; columns of a row-major [n, 2] are not.
        let coords = coords.transpose();
        let r = coords.clone().slice([0..1, 0..n]).reshape([n]);
        let theta = coords.slice([1..2, 0..n]).reshape([n]);

        let gains = folded_gains();
        let mut rho = r;
        let mut slope = derivative.then(|| rho.ones_like());
        for &gain in &gains.before_squash {
            rho = rho.mul_scalar(gain).tanh();
            slope = slope
                .map(|s| s.mul_scalar(gain) * rho.clone().powi_scalar(2).neg().add_scalar(1.0));
        }
        let rho = rho.mul_scalar(gains.tail);
        let amp_d = slope.map(|s| s.mul_scalar(gains.tail));

        let low = bits.transpose().slice([1..2, 0..n]).reshape([n]);
        let mask = ((1i64 << PHASE_TABLE_BITS) - 1).elem();
        let table = |first| {
            Tensor::<B, 1>::from_data(
                TensorData::new(phase_table_f32(first), [1 << PHASE_TABLE_BITS]),
                &device,
            )
        };
        let low_bits = low.clone().bitwise_and_scalar(mask);
        let high_bits = low
            .bitwise_right_shift_scalar(i64::from(PHASE_TABLE_BITS).elem())
            .bitwise_and_scalar(mask);
        let phase = table(0).select(0, low_bits) + table(PHASE_TABLE_BITS).select(0, high_bits);
        Self {
            amp: rho,
            amp_d,
            angle: theta + phase,
        }
    }

    /// `[nI, 2 nJ]`, columns `(a, b)` per column block: `a = A cos(angle)`,
    /// `b = -A sin(angle)`.
    pub fn coefficients(&self, layout: &BlockLayout) -> Tensor<B, 2> {
        let a = self.amp.clone() * self.angle.clone().cos();
        let b = (self.amp.clone() * self.angle.clone().sin()).neg();
        Tensor::stack::<2>(vec![a, b], 1).reshape([layout.row_blocks(), 2 * layout.col_blocks()])
    }
}

/// The basis stacked as `[C; S]`, `[2 br, bc]`.
pub(crate) fn stacked_basis<B: Backend>(layout: &BlockLayout, device: &B::Device) -> Tensor<B, 2> {
    let (br, bc) = (layout.block_rows, layout.block_cols);
    let mut values = vec![0f32; 2 * br * bc];
    for i in 0..br {
        for j in 0..bc {
            let (c, s) = basis(i, j, br, bc);
            values[i * bc + j] = c as f32;
            values[(br + i) * bc + j] = s as f32;
        }
    }
    Tensor::from_data(TensorData::new(values, [2 * br, bc]), device)
}

/// Zero-pads the last dimension of a `[batch, len]` tensor to `to`.
fn pad_cols<B: Backend>(t: Tensor<B, 2>, to: usize) -> Tensor<B, 2> {
    let [batch, len] = t.dims();
    if len == to {
        return t;
    }
    let zeros = Tensor::zeros([batch, to - len], &t.device());
    Tensor::cat(vec![t, zeros], 1)
}

/// `U[n, K, i] = sum_j basis_cs(i, j) x[n, J*bc + j]`, `[batch, 2 nJ, br]`.
fn project_input<B: Backend>(
    x: Tensor<B, 2>,
    basis: Tensor<B, 2>,
    layout: &BlockLayout,
) -> Tensor<B, 3> {
    let batch = x.dims()[0];
    let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
    pad_cols(x, nj * bc)
        .reshape([batch * nj, bc])
        .matmul(basis.transpose())
        .reshape([batch, 2 * nj, br])
}

/// Batches from which the tensor-op path works on `x^T`. Per row of `x` the narrow layout
/// multiplies `[nI, 2 nJ]` by `[2 nJ, br]`, a matmul too thin for the BLAS kernels to reach
/// their speed; stacking the rows as columns turns the whole batch into one `[nI, 2 nJ]` by
/// `[2 nJ, br * batch]` product. At batch 1 the transposes cost more than they save.
const WIDE_BATCH: usize = 16;

/// `U^T[K, (i, n)] = sum_j basis_cs(i, j) x[n, J*bc + j]`, `[2 nJ, br * batch]`.
fn project_input_wide<B: Backend>(
    x: Tensor<B, 2>,
    basis: Tensor<B, 2>,
    layout: &BlockLayout,
) -> Tensor<B, 2> {
    let batch = x.dims()[0];
    let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
    let xt = pad_cols(x, nj * bc).transpose().reshape([nj, bc, batch]);
    basis
        .unsqueeze::<3>()
        .matmul(xt)
        .reshape([2 * nj, br * batch])
}

/// `G^T` zero-padded to whole blocks, `[nI, br * batch]` with columns `(i, n)`.
fn block_rows_wide<B: Backend>(g: Tensor<B, 2>, layout: &BlockLayout) -> Tensor<B, 2> {
    let batch = g.dims()[0];
    let (br, ni) = (layout.block_rows, layout.row_blocks());
    pad_cols(g, ni * br).transpose().reshape([ni, br * batch])
}

/// `G` zero-padded to whole blocks, `[batch, nI, br]`.
fn block_rows_of<B: Backend>(g: Tensor<B, 2>, layout: &BlockLayout) -> Tensor<B, 3> {
    let batch = g.dims()[0];
    let (br, ni) = (layout.block_rows, layout.row_blocks());
    pad_cols(g, ni * br).reshape([batch, ni, br])
}

/// `y = x W^T`.
///
/// # Shapes
/// - `x`: `[batch, cols]`, `coords`, `bits`: `[n_blocks, 2]`; returns `[batch, rows]`
pub(crate) fn forward<B: Backend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: Tensor<B, 2, Int>,
    layout: &BlockLayout,
) -> FloatTensor<B> {
    let x = float::<B, 2>(x);
    let batch = x.dims()[0];
    let coef = SeedTerms::new(float(coords), bits, false).coefficients(layout);
    let basis = stacked_basis(layout, &x.device());
    if batch >= WIDE_BATCH {
        // y^T[(I, i), n] = sum_K coef[I, K] U^T[K, (i, n)]: one large matmul.
        let u = project_input_wide(x, basis, layout);
        let y = coef
            .matmul(u)
            .reshape([layout.row_blocks() * layout.block_rows, batch])
            .slice([0..layout.rows, 0..batch])
            .transpose();
        return prim(y);
    }
    let u = project_input(x, basis, layout);
    // y[n, I, i] = sum_K coef[I, K] U[n, K, i], one small matmul per row of x.
    let y = coef
        .unsqueeze::<3>()
        .matmul(u)
        .reshape([batch, layout.row_blocks() * layout.block_rows])
        .slice([0..batch, 0..layout.rows]);
    prim(y)
}

/// The backward of [`forward`]: `dL/dx`, `dL/d(r, theta)` and, with a `threshold` and
/// `wanted.signal`, the net transition counts `#{dW > t} - #{dW < -t}` per seed and slot.
///
/// # Shapes
/// - `x`: `[batch, cols]`, `grad_y`: `[batch, rows]`, `coords`, `bits`: `[n_blocks, 2]`
pub(crate) fn backward<B: Backend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: Tensor<B, 2, Int>,
    grad_y: FloatTensor<B>,
    layout: &BlockLayout,
    wanted: Wanted,
    threshold: Option<f32>,
) -> Grads<FloatTensor<B>> {
    let want_grad_x = wanted.x;
    let x = float::<B, 2>(x);
    let g = float::<B, 2>(grad_y);
    let device = x.device();
    let batch = x.dims()[0];
    let (br, bc, ni, nj) = (
        layout.block_rows,
        layout.block_cols,
        layout.row_blocks(),
        layout.col_blocks(),
    );
    let terms = SeedTerms::new(float(coords), bits, true);
    let coef = terms.coefficients(layout);
    let basis = stacked_basis::<B>(layout, &device);
    let (grad_x, d_coef) = if batch >= WIDE_BATCH {
        // Q^T[K, (i, n)] = sum_I coef[I, K] G^T[I, (i, n)]; dL/dx^T[(J, j), n] =
        // sum_{cs, i} basis_cs(i, j) Q^T[(J, cs), (i, n)].
        let gt = block_rows_wide(g.clone(), layout);
        let q = coef
            .clone()
            .transpose()
            .matmul(gt.clone())
            .reshape([nj, 2 * br, batch]);
        let grad_x = want_grad_x.then(|| {
            basis
                .clone()
                .transpose()
                .unsqueeze::<3>()
                .matmul(q)
                .reshape([nj * bc, batch])
                .slice([0..layout.cols, 0..batch])
                .transpose()
        });
        // dL/dcoef[I, K] = sum_{(i, n)} G^T[I, (i, n)] U^T[K, (i, n)].
        let u = project_input_wide(x.clone(), basis, layout);
        (grad_x, gt.matmul(u.transpose()))
    } else {
        let g3 = block_rows_of(g.clone(), layout);
        // Q[n, K, i] = sum_I coef[I, K] G[n, I, i]; dL/dx[n, J, j] = sum_{cs, i}
        // basis_cs(i, j) Q[n, (J, cs), i].
        let grad_x = want_grad_x.then(|| {
            coef.clone()
                .transpose()
                .unsqueeze::<3>()
                .matmul(g3.clone())
                .reshape([batch * nj, 2 * br])
                .matmul(basis.clone())
                .reshape([batch, nj * bc])
                .slice([0..batch, 0..layout.cols])
        });
        // dL/dcoef[I, K] = sum_{n, i} G[n, I, i] U[n, K, i].
        let u = project_input(x.clone(), basis, layout);
        let d_coef = g3
            .swap_dims(1, 2)
            .reshape([batch * br, ni])
            .transpose()
            .matmul(u.swap_dims(1, 2).reshape([batch * br, 2 * nj]));
        (grad_x, d_coef)
    };
    let n = layout.num_blocks();
    let d_coef = d_coef.reshape([n, 2]).transpose();
    let da = d_coef.clone().slice([0..1, 0..n]).reshape([n]);
    let db = d_coef.slice([1..2, 0..n]).reshape([n]);
    let (cos, sin) = (terms.angle.clone().cos(), terms.angle.sin());
    let amp_d = terms.amp_d.expect("derivative requested");
    let d_r = amp_d * (da.clone() * cos.clone() - db.clone() * sin.clone());
    let d_theta = (terms.amp * (da * sin + db * cos)).neg();
    let grad_coords = Tensor::stack::<2>(vec![d_r, d_theta], 1);

    let signal = threshold
        .filter(|_| wanted.signal)
        .map(|t| prim(transition_counts(x, g, layout, t)));
    Grads {
        x: grad_x.map(prim),
        coords: prim(grad_coords),
        signal,
    }
}

/// Net counts `#{dW > t} - #{dW < -t}` per seed and slot, `[n_blocks, 4]`.
///
/// `dW = G^T x` is formed one block row at a time (`br x d_input` floats), never whole.
fn transition_counts<B: Backend>(
    x: Tensor<B, 2>,
    g: Tensor<B, 2>,
    layout: &BlockLayout,
    threshold: f32,
) -> Tensor<B, 2> {
    let device = x.device();
    let batch = x.dims()[0];
    let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
    let x = pad_cols(x, nj * bc);
    let g = pad_cols(g, layout.row_blocks() * br);

    let mut slots = vec![0f32; br * bc * 4];
    for i in 0..br {
        for j in 0..bc {
            slots[(i * bc + j) * 4 + transition_slot(i, j)] = 1.0;
        }
    }
    let slots = Tensor::<B, 2>::from_data(TensorData::new(slots, [br * bc, 4]), &device);

    let per_block_row = (0..layout.row_blocks())
        .map(|bi| {
            let dw = g
                .clone()
                .slice([0..batch, bi * br..(bi + 1) * br])
                .transpose()
                .matmul(x.clone());
            let sign =
                dw.clone().greater_elem(threshold).float() - dw.lower_elem(-threshold).float();
            sign.reshape([br, nj, bc])
                .swap_dims(0, 1)
                .reshape([nj, br * bc])
                .matmul(slots.clone())
        })
        .collect();
    Tensor::cat(per_block_row, 0)
}

/// The dense `[rows, cols]` weight.
pub(crate) fn decode<B: Backend>(
    coords: FloatTensor<B>,
    bits: Tensor<B, 2, Int>,
    layout: &BlockLayout,
) -> FloatTensor<B> {
    let coords = float::<B, 2>(coords);
    let device = coords.device();
    let (br, bc, ni, nj) = (
        layout.block_rows,
        layout.block_cols,
        layout.row_blocks(),
        layout.col_blocks(),
    );
    let coef = SeedTerms::new(coords, bits, false).coefficients(layout);
    let basis = stacked_basis::<B>(layout, &device).reshape([2, br * bc]);
    // W_IJ = a_IJ C + b_IJ S for every block at once: [nI nJ, 2] x [2, br bc].
    let w = coef
        .reshape([ni * nj, 2])
        .matmul(basis)
        .reshape([ni, nj, br, bc])
        .swap_dims(1, 2)
        .reshape([ni * br, nj * bc])
        .slice([0..layout.rows, 0..layout.cols]);
    prim(w)
}

/// The bits after moving each 2-bit slot `s` (bits `2s, 2s+1` of `hi[31:0]`) by
/// `counts[:, s]`, modulo 4 (docs/math.md §5); the other bits are kept. Int tensor ops on
/// the bits' device: no readback.
///
/// # Shapes
/// - `bits`: `[n_blocks, 2]`, `counts`: `[n_blocks, 4]` integer-valued floats
/// - returns `[n_blocks, 2]`
pub(crate) fn apply_transitions<B: Backend>(
    bits: Tensor<B, 2, Int>,
    counts: Tensor<B, 2>,
) -> Tensor<B, 2, Int> {
    let n = bits.dims()[0];
    let high = bits.clone().slice([0..n, 0..1]);
    let low = bits.slice([0..n, 1..2]);
    let counts = counts.int();
    // Two's complement makes `& 3` a non-negative mod 4 and `& !0xFF` keep the sign bits.
    let mut moved = low.clone().bitwise_and_scalar((!0xFF_i64).elem());
    for slot in 0..4i64 {
        let state = low
            .clone()
            .bitwise_right_shift_scalar((2 * slot).elem())
            .bitwise_and_scalar(3.elem());
        let count = counts
            .clone()
            .slice([0..n, slot as usize..slot as usize + 1]);
        let next = (state + count).bitwise_and_scalar(3.elem());
        moved = moved.bitwise_or(next.bitwise_left_shift_scalar((2 * slot).elem()));
    }
    Tensor::cat(vec![high, moved], 1)
}
