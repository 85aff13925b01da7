//! `y = x W^T` through the exact closed form (docs/math.md §3), without forming `W`.
//!
//! Every block is `a*C + b*S`, so with the projections
//! `U[n, J, 0, i] = sum_j C(i, j) x[n, J*bc + j]` (and `S` for `U[n, J, 1, i]`) each output
//! is `y[n, I*br + i] = sum_J a_IJ U[n, J, 0, i] + b_IJ U[n, J, 1, i]`: about
//! `2 M N / B + 2 B N` multiply-adds per row of `x` instead of `M N`.
//!
//! One launch after [`super::seed_coefficients`]: a cube owns one row `n` of `x` and up to
//! `THREADS * per_thread` outputs, stages `U` for a few column blocks at a time in shared
//! memory and folds it into the outputs it owns, so `U` never goes to global memory.
//! Cubes that own different output rows of the same `n` recompute the same `U`; with 1024
//! outputs per cube that repeats `2 B N` work `M / 1024` times, which stays below the
//! combine's `2 M N / B` for blocks up to 32 wide. Small batches trade some of that
//! repetition for parallelism: a cube then owns 256 outputs, four times as many cubes.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use super::coefficients::{Coefficients, seed_coefficients};
use crate::BlockLayout;
use crate::cube::held_extent;
use crate::cube::launch::{KernelDtypes, THREADS, arg, dims, empty, spread, to_u32};

/// Outputs each thread accumulates in registers, when there are cubes enough.
const ROWS_PER_THREAD: usize = 4;
/// Below this many cubes a launch gives each thread one output instead.
const MIN_CUBES: usize = 256;
/// `U` values staged per round, in elements (8 KiB of f32, half of WebGPU's guaranteed
/// 16 KiB of workgroup memory).
const STAGE: usize = 2048;

/// Which outputs the cubes own. A cube owns `span` consecutive in-block rows `i0..` of each
/// of `group` consecutive block rows: whole block rows when they fit in one cube, else a
/// `span`-row slice of one block row (`sub` cubes per block row).
#[derive(Debug, Clone, Copy)]
struct RowTiling {
    per_thread: usize,
    span: u32,
    group: u32,
    sub: u32,
    row_cubes: u32,
    col_blocks_per_stage: u32,
}

impl RowTiling {
    fn new(layout: &BlockLayout, batch: usize) -> Self {
        let wide = Self::with(layout, ROWS_PER_THREAD);
        if (wide.row_cubes as usize).saturating_mul(batch) >= MIN_CUBES {
            wide
        } else {
            Self::with(layout, 1)
        }
    }

    fn with(layout: &BlockLayout, per_thread: usize) -> Self {
        let owned = THREADS as usize * per_thread;
        let br = layout.block_rows;
        let span = br.min(owned);
        let group = (owned / br).max(1);
        let sub = br.div_ceil(span);
        let row_cubes = if sub > 1 {
            layout.row_blocks() * sub
        } else {
            layout.row_blocks().div_ceil(group)
        };
        Self {
            per_thread,
            span: to_u32("span", span),
            group: to_u32("group", group),
            sub: to_u32("sub", sub),
            row_cubes: to_u32("row cubes", row_cubes),
            // span <= owned <= STAGE / 2, so at least one column block fits.
            col_blocks_per_stage: to_u32("stage", STAGE / (2 * span)),
        }
    }
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn closed_form_forward_kernel<F: Float>(
    x: &Tensor<F>,
    basis: &Tensor<F>,
    coef: &Tensor<F>,
    y: &mut Tensor<F>,
    cols: u32,
    br: u32,
    bc: u32,
    nj: u32,
    span: u32,
    group: u32,
    sub: u32,
    row_cubes: u32,
    stage_blocks: u32,
    cubes_x: u32,
    #[comptime] per_thread: usize,
    #[define(F)] _dtype: StorageType,
) {
    let cube = (CUBE_POS_Y * cubes_x + CUBE_POS_X) as usize;
    let row_cubes = row_cubes as usize;
    let n = cube / row_cubes;
    let batch = y.shape(0);
    if n >= batch {
        terminate!();
    }
    let rows = y.shape(1);
    let (cols, br, bc, nj) = (cols as usize, br as usize, bc as usize, nj as usize);
    let (span, group, sub) = (span as usize, group as usize, sub as usize);
    let stage_blocks = stage_blocks as usize;
    let rc = cube % row_cubes;
    let mut first_block_row = rc * group;
    let mut i0 = 0usize;
    if sub > 1 {
        first_block_row = rc / sub;
        i0 = (rc % sub) * span;
    }
    let owned = group * span;
    let t = UNIT_POS as usize;
    let threads = comptime!(THREADS as usize);
    let cells = br * bc;
    let x_row = n * cols;

    let mut acc = Array::<F>::new(per_thread);
    #[unroll]
    for k in 0..per_thread {
        acc[k] = F::new(0.0);
    }
    let mut u = SharedMemory::<F>::new(STAGE);

    let mut j0 = 0usize;
    while j0 < nj {
        let mut jn = nj - j0;
        if jn > stage_blocks {
            jn = stage_blocks;
        }
        // Stage U[n, j0 .. j0 + jn, (C|S), i0 .. i0 + span] as [jn][2][span].
        let entries = jn * 2 * span;
        let mut e = t;
        while e < entries {
            let li = e % span;
            let rest = e / span;
            let i = i0 + li;
            let mut v = F::new(0.0);
            if i < br {
                let col0 = (j0 + rest / 2) * bc;
                let width = held_extent(col0, bc, cols);
                let b = (rest % 2) * cells + i * bc;
                for j in 0..width {
                    v += basis[b + j] * x[x_row + col0 + j];
                }
            }
            u[e] = v;
            e += threads;
        }
        sync_cube();
        #[unroll]
        for k in 0..per_thread {
            let l = t + k * threads;
            let li = l % span;
            let bi = first_block_row + l / span;
            let row = bi * br + i0 + li;
            if l < owned && i0 + li < br && row < rows {
                let mut a = acc[k];
                for jl in 0..jn {
                    let c = (bi * nj + j0 + jl) * 4;
                    let base = jl * 2 * span + li;
                    a += coef[c] * u[base] + coef[c + 1] * u[base + span];
                }
                acc[k] = a;
            }
        }
        sync_cube();
        j0 += jn;
    }

    #[unroll]
    for k in 0..per_thread {
        let l = t + k * threads;
        let li = l % span;
        let row = (first_block_row + l / span) * br + i0 + li;
        if l < owned && i0 + li < br && row < rows {
            let index = n * rows + row;
            y[index] = acc[k];
        }
    }
}

/// `y = x W^T`, `W` given by the seeds through the closed form: two launches,
/// [`super::seed_coefficients`] and [`closed_form_forward`].
///
/// Reference: [`crate::formats::paper::reference::layer_forward`].
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `coords`, `bits`: `[n_blocks, 2]`
/// - returns `[batch, layout.rows]`
pub fn fused_closed_form_matmul<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    coords: &TensorHandle<R>,
    bits: &TensorHandle<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let coefs = seed_coefficients(client, dtypes, coords, bits, layout);
    closed_form_forward(client, dtypes, x, &coefs, layout)
}

/// The fused projection and combination alone (one launch), for callers that already hold
/// the coefficients.
///
/// # Shapes
/// - `x`: `[batch, layout.cols]`; `coefs`: from [`super::seed_coefficients`] of `layout`
/// - returns `[batch, layout.rows]`
pub fn closed_form_forward<R: Runtime>(
    client: &ComputeClient<R>,
    dtypes: KernelDtypes,
    x: &TensorHandle<R>,
    coefs: &Coefficients<R>,
    layout: &BlockLayout,
) -> TensorHandle<R> {
    let batch = x.shape()[0];
    let [_, cols, br, bc, nj] = dims(layout);
    let y = empty(client, &[batch, layout.rows], dtypes.float);
    let tiling = RowTiling::new(layout, batch);
    let cubes = tiling
        .row_cubes
        .checked_mul(to_u32("batch", batch))
        .unwrap_or_else(|| panic!("{batch} x {tiling:?} cubes do not fit u32"));
    let (count, cubes_x) = spread(cubes);
    closed_form_forward_kernel::launch::<R>(
        client,
        count,
        CubeDim::new_1d(THREADS),
        arg(x, &[batch, layout.cols]),
        arg(&coefs.basis, &[2, layout.block_rows, layout.block_cols]),
        arg(&coefs.coef, &[layout.num_blocks(), 4]),
        arg(&y, &[batch, layout.rows]),
        cols,
        br,
        bc,
        nj,
        tiling.span,
        tiling.group,
        tiling.sub,
        tiling.row_cubes,
        tiling.col_blocks_per_stage,
        cubes_x,
        tiling.per_thread,
        dtypes.float,
    );
    y
}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    use super::*;
    use crate::cube::test_utils::{TestEnv, paper_cases};
    use crate::formats::paper::reference::layer_forward;
    use crate::testing::{PaperSeeds, assert_close, random_vec, rng};

    #[test]
    fn matches_reference() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(103);
        for (layout, batch) in paper_cases(&mut rng) {
            let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
            let x = random_vec(&mut rng, batch * layout.cols);
            let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
            let xt = env.floats(&x, &[batch, layout.cols]);
            let got = env.read(&fused_closed_form_matmul(
                &env.client,
                env.dtypes,
                &xt,
                &coords,
                &bits,
                &layout,
            ));
            let want = layer_forward(&seeds.params, &layout, &x, batch).unwrap();
            assert_close(
                &got,
                &want,
                1e-5,
                &format!("closed form {layout:?} x{batch}"),
            );
        }
    }

    /// The row tiling's edges: block rows taller than a cube (`sub > 1`), more column
    /// blocks than one shared-memory stage holds, one-row blocks grouped to a cube, one and
    /// four outputs per thread, and the coefficients reused for a second input.
    #[test]
    fn tiling_edges() {
        let Some(env) = TestEnv::new() else { return };
        let mut rng = rng(112);
        for (layout, batch) in [
            (BlockLayout::new(2100, 3, 1100, 1).unwrap(), 2),
            (BlockLayout::new(3, 700, 4, 1).unwrap(), 3),
            (BlockLayout::new(1, 5000, 1, 3).unwrap(), 1),
            (BlockLayout::new(1500, 2, 1, 2).unwrap(), 2),
            (BlockLayout::new(1030, 9, 1030, 9).unwrap(), 1),
            // Enough cubes for four outputs per thread.
            (BlockLayout::new(70, 45, 16, 16).unwrap(), 300),
            (BlockLayout::new(2100, 3, 1100, 1).unwrap(), 70),
        ] {
            let tiling = RowTiling::new(&layout, batch);
            let seeds = PaperSeeds::random(&mut rng, layout.num_blocks());
            let (coords, bits) = env.seeds(&seeds.coords, &seeds.bits);
            let coefs = seed_coefficients(&env.client, env.dtypes, &coords, &bits, &layout);
            for _ in 0..2 {
                let x = random_vec(&mut rng, batch * layout.cols);
                let xt = env.floats(&x, &[batch, layout.cols]);
                let y = closed_form_forward(&env.client, env.dtypes, &xt, &coefs, &layout);
                let want = layer_forward(&seeds.params, &layout, &x, batch).unwrap();
                let what = format!("{layout:?} x{batch} {tiling:?}");
                assert_close(&env.read(&y), &want, 1e-5, &what);
            }
        }
    }
}
