//! The RBE op built from Burn tensor operations: the default bodies of
//! [`crate::RbeBackend`], used by every backend without CubeCL kernels (e.g. NdArray).
//!
//! It uses the closed form of contract section 3 throughout: each block is `a*C + b*S`, so
//! the product factors into two small matmuls and the weight matrix is never formed.
//!
//! Index conventions: `nI x nJ` blocks of `br x bc`; `K = cs * nJ + J` enumerates the
//! `(cosine/sine, column block)` pairs, matching `coef = [a | b]` of shape `[nI, 2 nJ]`.

use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData, TensorPrimitive};
use rbe_cubecl::BlockLayout;
use rbe_cubecl::reference::{CORDIC_GAIN, CORDIC_STEPS, TANH_EVERY, basis, transition_slot};

use crate::backend::{RbeGrads, RbeSpec};

fn float<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// Per-seed quantities of the closed form, each `[n_blocks]`.
pub(crate) struct SeedTerms<B: Backend> {
    /// `A(r)`.
    pub amp: Tensor<B, 1>,
    /// `A'(r)`.
    pub amp_d: Tensor<B, 1>,
    /// `theta + c(bits)`.
    pub angle: Tensor<B, 1>,
}

impl<B: Backend> SeedTerms<B> {
    /// Evaluates the radius map and the CORDIC phase for every seed.
    pub fn new(coords: Tensor<B, 2>, bits: Tensor<B, 2, Int>) -> Self {
        let n = coords.dims()[0];
        let r = coords.clone().slice([0..n, 0..1]).reshape([n]);
        let theta = coords.slice([0..n, 1..2]).reshape([n]);

        let mut rho = r;
        let mut slope = rho.ones_like();
        for k in 0..CORDIC_STEPS {
            let gain = (1.0 + (-2.0 * f64::from(k)).exp2()).sqrt();
            rho = rho.mul_scalar(gain);
            slope = slope.mul_scalar(gain);
            if k % TANH_EVERY == 0 {
                rho = rho.tanh();
                slope = slope * rho.clone().powi_scalar(2).neg().add_scalar(1.0);
            }
        }

        // c = sum_k s_k atan(2^-k) with s_k = 2 bit_k - 1.
        let low = bits.slice([0..n, 1..2]).reshape([n]);
        let mut phase = theta.zeros_like();
        let mut offset = 0.0;
        for k in 0..CORDIC_STEPS {
            let step = (-f64::from(k)).exp2().atan();
            let bit = low
                .clone()
                .bitwise_right_shift_scalar((k as i64).elem())
                .bitwise_and_scalar(1.elem())
                .float();
            phase = phase + bit.mul_scalar(2.0 * step);
            offset += step;
        }
        Self {
            amp: rho.div_scalar(CORDIC_GAIN),
            amp_d: slope.div_scalar(CORDIC_GAIN),
            angle: theta + phase.sub_scalar(offset),
        }
    }

    /// `[a | b]`, `[nI, 2 nJ]`, with `a = A cos(angle)`, `b = -A sin(angle)`.
    pub fn coefficients(&self, layout: &BlockLayout) -> Tensor<B, 2> {
        let shape = [layout.row_blocks(), layout.col_blocks()];
        let a = (self.amp.clone() * self.angle.clone().cos()).reshape(shape);
        let b = (self.amp.clone() * self.angle.clone().sin())
            .neg()
            .reshape(shape);
        Tensor::cat(vec![a, b], 1)
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

/// `U[(n, i), K] = sum_j basis_cs(i, j) x[n, J, j]`, `[batch * br, 2 nJ]`.
fn project_input<B: Backend>(
    x: Tensor<B, 2>,
    basis: Tensor<B, 2>,
    layout: &BlockLayout,
) -> Tensor<B, 2> {
    let batch = x.dims()[0];
    let (br, bc, nj) = (layout.block_rows, layout.block_cols, layout.col_blocks());
    let x = pad_cols(x, nj * bc).reshape([batch * nj, bc]);
    x.matmul(basis.transpose())
        .reshape([batch, nj, 2, br])
        .permute([0, 3, 2, 1])
        .reshape([batch * br, 2 * nj])
}

/// `G` rearranged to `[(n, i), I]`, `[batch * br, nI]`, zero-padded to whole blocks.
fn block_rows_of<B: Backend>(g: Tensor<B, 2>, layout: &BlockLayout) -> Tensor<B, 2> {
    let batch = g.dims()[0];
    let (br, ni) = (layout.block_rows, layout.row_blocks());
    pad_cols(g, ni * br)
        .reshape([batch, ni, br])
        .swap_dims(1, 2)
        .reshape([batch * br, ni])
}

pub(crate) fn forward<B: Backend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    spec: &RbeSpec,
) -> FloatTensor<B> {
    let x = float::<B, 2>(x);
    let layout = &spec.layout;
    let batch = x.dims()[0];
    let (br, ni) = (layout.block_rows, layout.row_blocks());
    let coef = SeedTerms::new(float(coords), Tensor::from_primitive(bits)).coefficients(layout);
    let u = project_input(x.clone(), stacked_basis(layout, &x.device()), layout);
    let y = u
        .matmul(coef.transpose())
        .reshape([batch, br, ni])
        .swap_dims(1, 2)
        .reshape([batch, ni * br])
        .slice([0..batch, 0..layout.rows]);
    prim(y)
}

pub(crate) fn backward<B: Backend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    grad_y: FloatTensor<B>,
    spec: &RbeSpec,
) -> RbeGrads<B> {
    let layout = &spec.layout;
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
    let terms = SeedTerms::new(float(coords), Tensor::from_primitive(bits));
    let coef = terms.coefficients(layout);
    let basis = stacked_basis::<B>(layout, &device);
    let g2 = block_rows_of(g.clone(), layout);

    // dL/dx[n, J, j] = sum_{cs, i} basis_cs(i, j) Q[(n, i), (cs, J)], Q = G coef.
    let grad_x = g2
        .clone()
        .matmul(coef)
        .reshape([batch, br, 2, nj])
        .permute([0, 3, 2, 1])
        .reshape([batch * nj, 2 * br])
        .matmul(basis.clone())
        .reshape([batch, nj * bc])
        .slice([0..batch, 0..layout.cols]);

    // dL/d[a | b] = G^T U, then the chain rule through a = A cos, b = -A sin.
    let u = project_input(x.clone(), basis, layout);
    let d_coef = g2.transpose().matmul(u);
    let n = layout.num_blocks();
    let da = d_coef.clone().slice([0..ni, 0..nj]).reshape([n]);
    let db = d_coef.slice([0..ni, nj..2 * nj]).reshape([n]);
    let (cos, sin) = (terms.angle.clone().cos(), terms.angle.sin());
    let d_r = terms.amp_d * (da.clone() * cos.clone() - db.clone() * sin.clone());
    let d_theta = (terms.amp * (da * sin + db * cos)).neg();
    let grad_coords = Tensor::stack::<2>(vec![d_r, d_theta], 1);

    let transitions = spec
        .transition_threshold
        .map(|t| prim(transition_counts(x, g, layout, t)));
    RbeGrads {
        x: prim(grad_x),
        coords: prim(grad_coords),
        transitions,
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

pub(crate) fn decode<B: Backend>(
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    spec: &RbeSpec,
) -> FloatTensor<B> {
    let layout = &spec.layout;
    let coords = float::<B, 2>(coords);
    let device = coords.device();
    let (br, bc, ni, nj) = (
        layout.block_rows,
        layout.block_cols,
        layout.row_blocks(),
        layout.col_blocks(),
    );
    let coef = SeedTerms::new(coords, Tensor::from_primitive(bits)).coefficients(layout);
    let basis = stacked_basis::<B>(layout, &device).reshape([2, br * bc]);
    // W_IJ = a_IJ C + b_IJ S for every block at once: [nI nJ, 2] x [2, br bc].
    let ab = coef
        .reshape([ni, 2, nj])
        .swap_dims(1, 2)
        .reshape([ni * nj, 2]);
    let w = ab
        .matmul(basis)
        .reshape([ni, nj, br, bc])
        .swap_dims(1, 2)
        .reshape([ni * br, nj * bc])
        .slice([0..layout.rows, 0..layout.cols]);
    prim(w)
}
