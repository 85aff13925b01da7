//! The one GEMM primitive every kernel here is built from: `gemm::gemm` on strided f32
//! views, single-threaded (the callers split the work across rayon themselves, so that
//! each thread runs whole products and nothing nests), plus the helpers to split work.

use std::ops::Range;

/// A read-only strided matrix: element `(r, c)` lives at `ptr + r * rs + c * cs`.
#[derive(Clone, Copy)]
pub(crate) struct View {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

/// A writable strided matrix, laid out like [`View`].
#[derive(Clone, Copy)]
pub(crate) struct ViewMut {
    pub ptr: *mut f32,
    pub rs: usize,
    pub cs: usize,
}

// SAFETY: the views are plain addresses; every parallel caller hands disjoint output
// elements to each task and only reads shared inputs.
unsafe impl Send for View {}
unsafe impl Sync for View {}
unsafe impl Send for ViewMut {}
unsafe impl Sync for ViewMut {}

impl View {
    /// A view of `data` with the given strides.
    pub fn of(data: &[f32], rs: usize, cs: usize) -> Self {
        Self {
            ptr: data.as_ptr(),
            rs,
            cs,
        }
    }

    /// The same view moved by `elements`.
    ///
    /// # Safety
    /// The result must stay inside the allocation the view points into.
    pub unsafe fn at(self, elements: usize) -> Self {
        Self {
            ptr: unsafe { self.ptr.add(elements) },
            ..self
        }
    }
}

impl ViewMut {
    /// A view of `data` with the given strides.
    pub fn of(data: &mut [f32], rs: usize, cs: usize) -> Self {
        Self {
            ptr: data.as_mut_ptr(),
            rs,
            cs,
        }
    }

    /// The same view moved by `elements`.
    ///
    /// # Safety
    /// The result must stay inside the allocation the view points into.
    pub unsafe fn at(self, elements: usize) -> Self {
        Self {
            ptr: unsafe { self.ptr.add(elements) },
            ..self
        }
    }
}

/// `dst[m, n] = lhs[m, k] rhs[k, n]`, or `dst += lhs rhs` when `accumulate`.
///
/// # Safety
/// Every element the three views address for these sizes must be in bounds, and no other
/// thread may touch the addressed `dst` elements during the call.
pub(crate) unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: ViewMut,
    accumulate: bool,
    lhs: View,
    rhs: View,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    unsafe { *dst.ptr.add(r * dst.rs + c * dst.cs) = 0.0 };
                }
            }
        }
        return;
    }
    // gemm takes column strides before row strides; `dst = alpha dst + beta lhs rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.cs as isize,
            dst.rs as isize,
            accumulate,
            lhs.ptr,
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.ptr,
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Multiply-adds below which a task is not worth a rayon split: a handful of microseconds.
const MIN_TASK_WORK: usize = 1 << 16;

/// How many parallel tasks `len` items of `work_per_item` multiply-adds each deserve: one
/// per rayon thread at most, none smaller than [`MIN_TASK_WORK`], never more than `len`.
pub(crate) fn parts(len: usize, work_per_item: usize) -> usize {
    let total = len.saturating_mul(work_per_item.max(1));
    rayon::current_num_threads()
        .min(total / MIN_TASK_WORK)
        .min(len)
        .max(1)
}

/// `0..len` cut into `parts` contiguous, nearly equal ranges.
pub(crate) fn split(len: usize, parts: usize) -> impl Iterator<Item = Range<usize>> {
    let parts = parts.clamp(1, len.max(1));
    (0..parts).map(move |p| (p * len / parts)..((p + 1) * len / parts))
}

/// `data` (`[rows, cols]`) with every row zero-padded to `to` columns; borrowed when no
/// padding is needed.
pub(crate) fn pad_cols(
    data: &[f32],
    rows: usize,
    cols: usize,
    to: usize,
) -> std::borrow::Cow<'_, [f32]> {
    if cols == to {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut out = vec![0.0; rows * to];
    for (dst, src) in out.chunks_exact_mut(to).zip(data.chunks_exact(cols)) {
        dst[..cols].copy_from_slice(src);
    }
    std::borrow::Cow::Owned(out)
}
