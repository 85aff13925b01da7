//! [`RbeBackend`] for `CubeBackend`: the fused CubeCL kernels of `rbe_cubecl::kernels`.

use burn_cubecl::{CubeBackend, CubeRuntime, FloatElement, IntElement, element::BoolElement};

use crate::backend::RbeBackend;

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> RbeBackend
    for CubeBackend<R, F, I, BT>
{
}
