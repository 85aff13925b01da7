//! The sign-blueprint format on any Burn backend (docs/math.md §9): the bits as per-cell
//! tensors, and the tensor-op forward and backward that backends without native kernels run.

pub(crate) mod cells;
pub(crate) mod ops;
