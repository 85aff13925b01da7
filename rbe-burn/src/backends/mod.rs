//! [`crate::RbeBackend`] for every backend a Burn 0.21 user runs, one file each.
//!
//! | backend | file | how the op runs |
//! |---|---|---|
//! | `CubeBackend` (WGPU, CUDA with fusion off) | `cube` | the fused CubeCL kernels |
//! | `Fusion<B>` (Burn's default `Wgpu`, `Cuda`) | `fusion` | custom operations on the fusion stream, run by `B` |
//! | `Flex` | `flex` (+ `host`) | the native CPU kernels of `rbe_cubecl::cpu`, on the tensors' memory in place; f16/bf16 use the tensor-op default bodies |
//! | `NdArray` (legacy) | `ndarray` (+ `host`) | the native CPU kernels, through a `TensorData` copy; non-f32 floats use the tensor-op default bodies |
//! | `Autodiff<B>` over any of these | `autodiff` | `B`'s forward plus a custom backward step |

mod autodiff;
mod cube;
#[cfg(feature = "flex")]
mod flex;
mod fusion;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod host;
#[cfg(feature = "ndarray")]
mod ndarray;
