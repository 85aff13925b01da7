//! What the native CPU kernels of every format share (feature `cpu`): the strided f32 GEMM
//! of the `gemm` crate, the engine Burn's Flex backend runs its own matmuls on, and the
//! helpers that split work across rayon threads; and what the bit-streaming kernels of the
//! sign and ternary formats share ([`lanes`]).

pub(crate) mod gemm;
pub(crate) mod lanes;
