//! Host-side helpers shared by the launchers.

use cubecl::prelude::*;
use cubecl::std::tensor::TensorHandle;

use crate::BlockLayout;

/// The element types a launch uses: the float dtype of activations and seeds, and the int
/// dtype of the seed bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelDtypes {
    /// Float storage (f32, f16, bf16, ...).
    pub float: StorageType,
    /// Int storage of the bits tensor (i32, i64, ...).
    pub int: StorageType,
}

impl KernelDtypes {
    pub(crate) fn both(&self) -> [StorageType; 2] {
        [self.float, self.int]
    }
}

/// Threads per cube for 1-D launches; WebGPU guarantees 256.
pub(crate) const THREADS: u32 = 256;

/// A new contiguous tensor of `shape`. Every buffer the launchers create comes from here,
/// which is what lets the tests bound them.
pub(crate) fn empty<R: Runtime>(
    client: &ComputeClient<R>,
    shape: &[usize],
    dtype: StorageType,
) -> TensorHandle<R> {
    let elems = shape.iter().product::<usize>().max(1);
    #[cfg(test)]
    allocations::record(elems * dtype.size());
    let handle = client.empty(elems * dtype.size());
    TensorHandle::new_contiguous(shape.to_vec(), handle, dtype)
}

/// The argument for a tensor, checked to be contiguous with the expected shape: the kernels
/// index with row-major offsets.
pub(crate) fn arg<R: Runtime>(t: &TensorHandle<R>, shape: &[usize]) -> TensorArg<R> {
    assert_eq!(&t.shape()[..], shape, "tensor shape");
    let mut stride = 1;
    for (dim, &len) in shape.iter().enumerate().rev() {
        assert!(
            len == 1 || t.strides()[dim] == stride,
            "kernel inputs must be contiguous (shape {shape:?}, strides {:?})",
            t.strides()
        );
        stride *= len;
    }
    t.clone().into_arg()
}

/// A 1-D launch over `elems` threads.
pub(crate) fn elementwise<R: Runtime>(
    client: &ComputeClient<R>,
    elems: usize,
) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new_1d(THREADS);
    (
        cubecl::calculate_cube_count_elemwise(client, elems, dim),
        dim,
    )
}

/// `value` as a u32 kernel scalar or launch size.
///
/// # Panics
/// If it does not fit. `BlockLayout::new` bounds every layout size and `RbeLinear` bounds the
/// batch, so only a caller that bypasses both can reach this; the panic keeps a too-large
/// size from being truncated into a wrong launch.
pub(crate) fn to_u32(what: &str, value: usize) -> u32 {
    u32::try_from(value)
        .unwrap_or_else(|_| panic!("{what} = {value} does not fit the kernels' u32 indices"))
}

/// One cube per seed, spread over two dimensions to stay under the 65535 limit.
pub(crate) fn per_seed(layout: &BlockLayout) -> (CubeCount, u32) {
    spread(to_u32("number of seeds", layout.num_blocks()))
}

/// `cubes` cubes spread over two dimensions to stay under the 65535 limit; the kernel
/// recovers its index as `CUBE_POS_Y * cubes_x + CUBE_POS_X` and must ignore indices past
/// `cubes`. Returns the count and `cubes_x`.
pub(crate) fn spread(cubes: u32) -> (CubeCount, u32) {
    let x = cubes.clamp(1, 65_535);
    (CubeCount::Static(x, cubes.div_ceil(x).max(1), 1), x)
}

/// `(rows, cols, br, bc, nJ)` as kernel scalars.
pub(crate) fn dims(layout: &BlockLayout) -> [u32; 5] {
    [
        to_u32("rows", layout.rows),
        to_u32("cols", layout.cols),
        to_u32("block_rows", layout.block_rows),
        to_u32("block_cols", layout.block_cols),
        to_u32("column blocks", layout.col_blocks()),
    ]
}

/// The largest buffer the launchers on this thread have allocated since the last reset.
#[cfg(test)]
pub(crate) mod allocations {
    use std::cell::Cell;

    thread_local! {
        static LARGEST: Cell<usize> = const { Cell::new(0) };
    }

    pub fn record(bytes: usize) {
        LARGEST.with(|l| l.set(l.get().max(bytes)));
    }

    /// The largest allocation since the previous call, in bytes.
    pub fn take_largest() -> usize {
        LARGEST.with(|l| l.replace(0))
    }
}
