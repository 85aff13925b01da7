//! [`RbeBackend`] for `CubeBackend` (WGPU, CUDA, ...): the fused kernels of
//! [`rbe_cubecl::kernels`].
//!
//! The tensors are made contiguous and handed to the launchers as `TensorHandle`s; every
//! output is a fresh contiguous buffer wrapped back into a `CubeTensor`. The only
//! `d_output x d_input` buffer any of these methods allocates is the one `rbe_decode`
//! returns, which is its purpose.

use burn::tensor::Shape;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeRuntime, FloatElement, IntElement, element::BoolElement};
use cubecl::std::tensor::TensorHandle;
use rbe_cubecl::kernels::{self, KernelDtypes};

use crate::backend::RbeBackend;
use crate::spec::{RbeGrads, RbeKernel, RbeSpec};

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
        let launch = match spec.kernel {
            RbeKernel::ClosedForm => kernels::fused_closed_form_matmul::<R>,
            RbeKernel::Cordic => kernels::fused_cordic_matmul::<R>,
        };
        let y = launch(
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
        let client = &x.client;
        let dt = dtypes(&x, &bits);
        let (xh, gh) = (handle(&x), handle(&g));
        let coef = kernels::seed_coefficients(client, dt, &handle(&coords), &handle(&bits));
        let grad_x = grad_x.then(|| {
            wrap(
                &x,
                kernels::grad_input(client, dt, &gh, &coef, &spec.layout),
            )
        });
        let u = kernels::project_blocks(client, dt, &xh, &spec.layout);
        let grad_coords = kernels::seed_gradients(client, dt, &gh, &u, &coef, &spec.layout);
        let transitions = spec.transition_threshold.map(|t| {
            wrap(
                &x,
                kernels::transition_counts(client, dt, &xh, &gh, t, &spec.layout),
            )
        });
        RbeGrads {
            x: grad_x,
            coords: wrap(&x, grad_coords),
            transitions,
        }
    }

    fn rbe_decode(
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        let (coords, bits) = (into_contiguous(coords), into_contiguous(bits));
        let w = kernels::cordic_decode(
            &coords.client,
            dtypes(&coords, &bits),
            &handle(&coords),
            &handle(&bits),
            &spec.layout,
        );
        wrap(&coords, w)
    }
}
