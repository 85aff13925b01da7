//! What the CubeCL kernels of every format share (feature `kernels`): launch and shape
//! helpers ([`KernelDtypes`], argument checks, the buffer-allocation hook the allocation
//! tests read) and `#[cube]` building blocks:
//!
//! - `held_extent` (`edge.rs`): how much of an edge block the matrix edge leaves, the one
//!   crop every kernel that walks a block's cells applies;
//! - `tiled_matmul` (`tiled_matmul.rs`): `a W^T` or `a W` by 16 x 16 shared-memory tiles,
//!   every weight generated inside the cube by a format's `WeightSource` (the paper's
//!   CORDIC weight, the sign blueprint's weight), whose comptime configuration it passes
//!   through.
//!
//! Shapes follow [`crate::BlockLayout`]: the weight is `[rows, cols] = [d_output, d_input]`,
//! `nI x nJ` blocks of `br x bc`, seed `I * nJ + J`.

mod edge;
pub(crate) mod launch;
#[cfg(all(test, feature = "wgpu"))]
pub(crate) mod test_utils;
mod tiled_matmul;

pub(crate) use edge::held_extent;
pub use launch::KernelDtypes;
pub(crate) use tiled_matmul::{WeightSource, tiled_matmul};
