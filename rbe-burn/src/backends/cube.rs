//! [`RbeBackend`] for `CubeBackend` (WGPU, CUDA, ...): the fused kernels of
//! [`rbe_cubecl::kernels`].
//!
//! The tensors are made contiguous and handed to the launchers as `TensorHandle`s; every
//! output is a fresh contiguous buffer wrapped back into a `CubeTensor`. The only
//! `d_output x d_input` buffer any of these methods allocates is the one `rbe_decode`
//! returns, which is its purpose.
//!
//! Launches per call: the closed-form forward 2 (the coefficients with the basis table,
//! then one fused kernel), the CORDIC forward 1, the backward 3 to 6 (see
//! `rbe_cubecl::kernels::backward`), the transitions 1. Sign-blueprint layers: forward 1
//! (`kernels::sign_forward`), backward 1 or 2 (`kernels::sign_backward`); their `rbe_decode`
//! is the tensor-op one.

use burn::tensor::Shape;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeRuntime, FloatElement, IntElement, element::BoolElement};
use cubecl::std::tensor::TensorHandle;
use rbe_cubecl::kernels::{self, KernelDtypes};

use crate::backend::RbeBackend;
use crate::sign;
use crate::spec::{RbeGrads, RbeKernel, RbeSpec, SeedFormat};

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
        let launch = match (spec.format, spec.kernel) {
            (SeedFormat::SignBlueprint, _) => kernels::sign_forward::<R>,
            (SeedFormat::Paper, RbeKernel::ClosedForm) => kernels::fused_closed_form_matmul::<R>,
            (SeedFormat::Paper, RbeKernel::Cordic) => kernels::fused_cordic_matmul::<R>,
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
        if spec.format == SeedFormat::SignBlueprint {
            // One launch for (alpha, mu) and the per-cell signal, one for `G W`.
            let out = kernels::sign_backward(
                &x.client,
                dtypes(&x, &bits),
                &handle(&x),
                &handle(&g),
                &handle(&coords),
                &handle(&bits),
                &spec.layout,
                grad_x,
                spec.transition_threshold.is_some(),
            );
            return RbeGrads {
                x: out.grad_x.map(|dx| wrap(&x, dx)),
                coords: wrap(&x, out.grad_coords),
                transitions: out.cell_signal.map(|t| wrap(&x, t)),
            };
        }
        // One call: the coefficients and the projections are computed once and shared by
        // the gradients (rbe_cubecl::kernels::backward).
        let out = kernels::backward(
            &x.client,
            dtypes(&x, &bits),
            &handle(&x),
            &handle(&g),
            &handle(&coords),
            &handle(&bits),
            &spec.layout,
            grad_x,
            spec.transition_threshold,
        );
        RbeGrads {
            x: out.grad_x.map(|dx| wrap(&x, dx)),
            coords: wrap(&x, out.grad_coords),
            transitions: out.transitions.map(|t| wrap(&x, t)),
        }
    }

    fn rbe_decode(
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        if spec.format == SeedFormat::SignBlueprint {
            return sign::ops::decode::<Self>(coords, bits, spec);
        }
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

    fn rbe_apply_transitions(bits: IntTensor<Self>, counts: FloatTensor<Self>) -> IntTensor<Self> {
        let (bits, counts) = (into_contiguous(bits), into_contiguous(counts));
        let moved = kernels::apply_transitions(
            &bits.client,
            dtypes(&counts, &bits),
            &handle(&bits),
            &handle(&counts),
        );
        wrap(&bits, moved)
    }
}
