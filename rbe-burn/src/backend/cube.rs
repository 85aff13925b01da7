//! [`RbeBackend`] for `CubeBackend` (WGPU, CUDA, ...): each format's CubeCL kernels
//! (`rbe_kernels::formats::*::kernels`).
//!
//! The tensors are made contiguous and handed to the launchers as `TensorHandle`s; every
//! output is a fresh contiguous buffer wrapped back into a `CubeTensor`. The only
//! `d_output x d_input` buffer any of these methods allocates is the one `rbe_decode`
//! returns, which is its purpose.
//!
//! Launches per call (see each format's kernel module): paper format, closed-form forward
//! 2, CORDIC forward 1, backward 3 to 6; sign blueprint, forward 1, backward 1 or 2; the
//! straight-through bits of the sign and ternary formats 1.
//! A format without a decode kernel decodes with its tensor-op layer.

use burn::tensor::Shape;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeRuntime, FloatElement, IntElement, element::BoolElement};
use cubecl::std::tensor::TensorHandle;
use rbe_kernels::cube::KernelDtypes;

use super::{RbeBackend, RbeGrads, RbeSpec, tensor_bits_from_latent};

fn handle<R: CubeRuntime>(t: &CubeTensor<R>) -> TensorHandle<R> {
    TensorHandle::new(
        t.handle.clone(),
        t.meta.shape().clone(),
        t.meta.strides().clone(),
        t.dtype,
    )
}

fn wrap<R: CubeRuntime>(like: &CubeTensor<R>, out: TensorHandle<R>) -> CubeTensor<R> {
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        Shape::from(out.shape().to_vec()),
        out.handle,
        like.dtype,
    )
}

fn dtypes<R: CubeRuntime>(float: &CubeTensor<R>, bits: &CubeTensor<R>) -> KernelDtypes {
    KernelDtypes {
        float: float.dtype.into(),
        int: bits.dtype.into(),
    }
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> RbeBackend
    for CubeBackend<R, F, I, BT>
{
    fn rbe_forward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        _probe: Option<FloatTensor<Self>>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        let (x, coords, bits) = (
            into_contiguous(x),
            into_contiguous(coords),
            into_contiguous(bits),
        );
        let y = spec.format.cube_forward(
            &x.client,
            dtypes(&x, &bits),
            &handle(&x),
            &handle(&coords),
            &handle(&bits),
            &spec.layout,
        );
        wrap(&x, y)
    }

    fn rbe_backward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        grad_y: FloatTensor<Self>,
        spec: &RbeSpec,
        grad_x: bool,
    ) -> RbeGrads<Self> {
        let (x, coords, bits) = (
            into_contiguous(x),
            into_contiguous(coords),
            into_contiguous(bits),
        );
        let g = into_contiguous(grad_y);
        spec.format
            .cube_backward(
                &x.client,
                dtypes(&x, &bits),
                &handle(&x),
                &handle(&g),
                &handle(&coords),
                &handle(&bits),
                &spec.layout,
                spec.wanted(grad_x),
            )
            .map(|t| wrap(&x, t))
    }

    fn rbe_decode(
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        let (coords, bits) = (into_contiguous(coords), into_contiguous(bits));
        let decoded = spec.format.cube_decode(
            &coords.client,
            dtypes(&coords, &bits),
            &handle(&coords),
            &handle(&bits),
            &spec.layout,
        );
        match decoded {
            Some(w) => wrap(&coords, w),
            None => spec.format.tensor_decode::<Self>(
                coords,
                burn::tensor::Tensor::from_primitive(bits),
                &spec.layout,
            ),
        }
    }

    fn rbe_bits_from_latent(
        latent: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        spec: &RbeSpec,
    ) -> IntTensor<Self> {
        let (latent, coords) = (into_contiguous(latent), into_contiguous(coords));
        let int = I::dtype();
        let dtypes = KernelDtypes {
            float: latent.dtype.into(),
            int: int.into(),
        };
        let derived = spec.format.cube_bits_from_latent(
            &latent.client,
            dtypes,
            &handle(&latent),
            &handle(&coords),
            &spec.layout,
        );
        match derived {
            Some(bits) => CubeTensor::new_contiguous(
                latent.client.clone(),
                latent.device.clone(),
                Shape::from(bits.shape().to_vec()),
                bits.handle,
                int,
            ),
            None => tensor_bits_from_latent::<Self>(latent, coords, spec),
        }
    }
}
