//! What the native CPU kernels of every format share (feature `cpu`): the strided f32 GEMM
//! of the `gemm` crate, the engine Burn's Flex backend runs its own matmuls on, and the
//! helpers that split work across rayon threads.

pub(crate) mod gemm;
