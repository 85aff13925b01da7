//! `out = a W^T` (or `a W`) with every weight generated from its seed inside the cube: the
//! 16 x 16 shared-memory tiled matmul that every seed format's fused product runs, with the
//! format's weight plugged in as a [`WeightSource`].
//!
//! A 16 x 16 cube computes a 16 x 16 tile of the output (16 batch rows by 16 outputs). For
//! each 16-wide slice of the reduced dimension it stages the activation tile in shared
//! memory and generates the matching 16 x 16 tile of `W` into shared memory, one weight per
//! thread, so each weight is generated once per 16 batch rows and never written to global
//! memory. Each output is owned by one thread and summed over the slices in order, and
//! within a slice in order: no atomics, deterministic.

use std::fmt::Debug;
use std::hash::Hash;

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::launch::{KernelDtypes, arg, dims, empty, to_u32};
use crate::BlockLayout;

/// Side of the square output tile, and the slice of the reduced dimension per round.
const TILE: u32 = 16;

/// A seed format's weight as the tiled matmul asks for it: cell `(i, j)` of the block of
/// seed `s`, generated from the seeds as the layers store them.
///
/// Implementors are marker types, one per format (the paper's CORDIC weight, the sign
/// blueprint's weight), each in its format's folder. What a format's weight depends on
/// beyond the seeds and is fixed per compiled kernel (the CORDIC schedule) is its
/// [`WeightSource::Config`]; the kernel passes it through as a comptime value, so it is
/// part of the compiled kernel, not a runtime argument.
#[cube]
pub(crate) trait WeightSource: 'static + Send + Sync {
    /// The format's compile-time settings; `()` when it has none. Part of the kernel's
    /// cache key, hence `Hash + Eq`.
    type Config: Copy + Debug + Hash + Eq + Send + Sync + 'static;

    /// `W` at cell `(i, j)` of the `br x bc` block of seed `s`.
    ///
    /// # Shapes
    /// - `coords`: `[n_blocks, 2]`, the two floats of each seed; `bits`: `[n_blocks, words]`
    ///   in the format's device layout, i32 bit patterns (possibly widened): for the paper
    ///   and sign seeds `(hi[63:32], hi[31:0])`
    #[allow(clippy::too_many_arguments)]
    fn weight<F: Float, I: Int>(
        coords: &Tensor<F>,
        bits: &Tensor<I>,
        s: usize,
        i: usize,
        j: usize,
        br: usize,
        bc: usize,
        #[comptime] config: Self::Config,
    ) -> F;
}

/// `out = a W^T` (`transpose == false`, `a: [batch, cols]`, `out: [batch, rows]`) or
/// `out = a W` (`transpose == true`, `a: [batch, rows]`, `out: [batch, cols]`), `W` given
/// by `S`. The cube at `(CUBE_POS_X, CUBE_POS_Y)` owns outputs `CUBE_POS_X*16..` of batch
/// rows `CUBE_POS_Y*16..`; thread `(tx, ty)` owns output `tx` of batch row `ty`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn tiled_matmul_kernel<F: Float, I: Int, S: WeightSource>(
    a: &Tensor<F>,
    coords: &Tensor<F>,
    bits: &Tensor<I>,
    out: &mut Tensor<F>,
    batch: u32,
    rows: u32,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    #[comptime] transpose: bool,
    #[comptime] config: S::Config,
    #[define(F, I)] _dtypes: [StorageType; 2],
) {
    let tile = comptime!(TILE as usize);
    let tx = UNIT_POS_X as usize;
    let ty = UNIT_POS_Y as usize;
    let out0 = CUBE_POS_X as usize * tile;
    let n0 = CUBE_POS_Y as usize * tile;
    let (batch, rows, cols) = (batch as usize, rows as usize, cols as usize);
    let (br, bc, nj) = (br as usize, bc as usize, nj as usize);
    // The reduced and the output dimension of the product.
    let mut reduced = cols;
    let mut outputs = rows;
    if comptime!(transpose) {
        reduced = rows;
        outputs = cols;
    }

    let mut a_tile = SharedMemory::<F>::new(comptime!(tile * tile));
    let mut w_tile = SharedMemory::<F>::new(comptime!(tile * tile));
    let mut acc = F::new(0.0);

    let rounds = reduced.div_ceil(tile);
    for t in 0..rounds {
        let red = t * tile + tx;
        // Activation tile, [n][red]; past the batch or the reduced dimension it is zero.
        let n = n0 + ty;
        let mut av = F::new(0.0);
        if n < batch && red < reduced {
            av = a[n * reduced + red];
        }
        a_tile[ty * tile + tx] = av;
        // Weight tile, [output][red]: thread (tx, ty) generates the weight of output
        // `out0 + ty` against `red`, i.e. W[out, red], or W[red, out] when transposed.
        let o = out0 + ty;
        let mut wv = F::new(0.0);
        if o < outputs && red < reduced {
            let mut row = o;
            let mut col = red;
            if comptime!(transpose) {
                row = red;
                col = o;
            }
            let s = (row / br) * nj + col / bc;
            wv = S::weight::<F, I>(coords, bits, s, row % br, col % bc, br, bc, config);
        }
        w_tile[ty * tile + tx] = wv;
        sync_cube();
        for kk in 0..tile {
            acc += a_tile[ty * tile + kk] * w_tile[tx * tile + kk];
        }
        sync_cube();
    }
    let n = n0 + ty;
    let o = out0 + tx;
    if n < batch && o < outputs {
        out[n * outputs + o] = acc;
    }
}

/// `a W^T`, or `a W` with `transpose`, for the weights `S` generates from the seeds: one
/// launch; the only buffer it creates is the output.
///
/// # Shapes
/// - `a`: `[batch, layout.cols]`, or `[batch, layout.rows]` with `transpose`;
///   `coords`: `[n_blocks, 2]`; `bits`: `[n_blocks, words]`, `words` the format's
/// - returns `[batch, layout.rows]`, or `[batch, layout.cols]` with `transpose`
///
/// # Panics
/// When a tensor is not contiguous with the shape above.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tiled_matmul<R: Runtime, S: WeightSource>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    a: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
    transpose: bool,
    config: S::Config,
) -> TensorHandle<R> {
    // The bits' width is the format's (2 words for the paper and sign seeds, 4 for the
    // ternary seed's 2-bit codes); the weight source indexes them itself.
    let bit_words = bits.shape().get(1).copied().unwrap_or(0);
    let batch = a.shape()[0];
    let n = layout.num_blocks();
    let [rows, cols, br, bc, nj] = dims(layout);
    let (reduced, outputs) = if transpose {
        (layout.rows, layout.cols)
    } else {
        (layout.cols, layout.rows)
    };
    let out = empty(client, &[batch, outputs], dtypes.float);
    tiled_matmul_kernel::launch::<S, R>(
        client,
        CubeCount::Static(
            to_u32("outputs", outputs).div_ceil(TILE),
            to_u32("batch", batch).div_ceil(TILE),
            1,
        ),
        CubeDim::new_2d(TILE, TILE),
        arg(a, &[batch, reduced]),
        arg(coords, &[n, 2]),
        arg(bits, &[n, bit_words]),
        arg(&out, &[batch, outputs]),
        to_u32("batch", batch),
        rows,
        cols,
        br,
        bc,
        nj,
        transpose,
        config,
        dtypes.both(),
    );
    out
}
