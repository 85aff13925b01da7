//! The glue between Burn's CPU backends and the native kernels of [`rbe_cubecl::cpu`]:
//! contiguous f32 slices of the inputs in, the kernel, a fresh tensor out.
//!
//! Each CPU backend says how it exposes its tensors as slices ([`HostBackend`]), copying
//! only when it must; the four ops here are then shared. Float tensors of another dtype
//! (f16, bf16, f64 through Burn's dtype) take the tensor-op path of [`crate::fallback`],
//! which works in any dtype.

use std::ops::Deref;

use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, Int, Tensor, TensorData, TensorMetadata};
use rbe_cubecl::cpu;

use crate::fallback;
use crate::spec::{RbeGrads, RbeSpec, SeedFormat};

/// The [`crate::RbeBackend`] methods of a [`HostBackend`]: every op goes to the shared
/// host path. Expands inside an `impl RbeBackend for ...` block.
macro_rules! rbe_backend_on_host {
    () => {
        fn rbe_forward(
            x: burn::tensor::ops::FloatTensor<Self>,
            coords: burn::tensor::ops::FloatTensor<Self>,
            bits: burn::tensor::ops::IntTensor<Self>,
            _probe: Option<burn::tensor::ops::FloatTensor<Self>>,
            spec: &$crate::spec::RbeSpec,
        ) -> burn::tensor::ops::FloatTensor<Self> {
            $crate::backends::host::forward::<Self>(x, coords, bits, spec)
        }

        fn rbe_backward(
            x: burn::tensor::ops::FloatTensor<Self>,
            coords: burn::tensor::ops::FloatTensor<Self>,
            bits: burn::tensor::ops::IntTensor<Self>,
            grad_y: burn::tensor::ops::FloatTensor<Self>,
            spec: &$crate::spec::RbeSpec,
            grad_x: bool,
        ) -> $crate::spec::RbeGrads<Self> {
            $crate::backends::host::backward::<Self>(x, coords, bits, grad_y, spec, grad_x)
        }

        fn rbe_decode(
            coords: burn::tensor::ops::FloatTensor<Self>,
            bits: burn::tensor::ops::IntTensor<Self>,
            spec: &$crate::spec::RbeSpec,
        ) -> burn::tensor::ops::FloatTensor<Self> {
            $crate::backends::host::decode::<Self>(coords, bits, spec)
        }

        fn rbe_apply_transitions(
            bits: burn::tensor::ops::IntTensor<Self>,
            counts: burn::tensor::ops::FloatTensor<Self>,
        ) -> burn::tensor::ops::IntTensor<Self> {
            $crate::backends::host::apply_transitions::<Self>(bits, counts)
        }
    };
}
pub(crate) use rbe_backend_on_host;

/// A backend whose tensors live in host memory.
pub(crate) trait HostBackend: Backend {
    /// A float tensor's values, contiguous and row-major.
    type Floats: Deref<Target = [f32]>;
    /// An int tensor's values as i32 (the low 32 bits of wider ints), row-major.
    type Ints: Deref<Target = [i32]>;

    /// The values of an f32 tensor (the callers check the dtype first).
    fn floats(t: FloatTensor<Self>) -> Self::Floats;

    /// The values of an int tensor of any int dtype.
    fn ints(t: IntTensor<Self>) -> Self::Ints;
}

/// [`HostBackend::ints`] through a [`TensorData`] round trip, for any backend.
pub(crate) fn ints_via_data<B: Backend>(t: IntTensor<B>) -> Vec<i32> {
    let data = Tensor::<B, 2, Int>::from_primitive(t).into_data();
    match data.dtype {
        DType::I32 => data.into_vec::<i32>().expect("i32 data"),
        // Bit patterns widened to 64 bits: keep the low 32 (`as` truncates).
        _ => data
            .convert::<i64>()
            .into_vec::<i64>()
            .expect("converted to i64")
            .into_iter()
            .map(|v| v as i32)
            .collect(),
    }
}

fn is_f32<T: TensorMetadata>(t: &T) -> bool {
    t.dtype() == DType::F32
}

fn dims<T: TensorMetadata>(t: &T) -> [usize; 2] {
    t.shape().dims::<2>()
}

const SPEC: &str = "tensor shapes follow the spec (see RbeBackend's # Panics)";

pub(crate) fn forward<B: HostBackend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    spec: &RbeSpec,
) -> FloatTensor<B> {
    if !(is_f32(&x) && is_f32(&coords)) {
        return fallback::forward::<B>(x, coords, bits, spec);
    }
    let layout = &spec.layout;
    let batch = dims(&x)[0];
    let device = B::float_device(&x);
    let (x, coords, bits) = (B::floats(x), B::floats(coords), B::ints(bits));
    let mut y = vec![0.0; batch * layout.rows];
    match spec.format {
        SeedFormat::Paper => cpu::forward(layout, &coords, &bits, &x, batch, &mut y),
        SeedFormat::SignBlueprint => cpu::sign_forward(layout, &coords, &bits, &x, batch, &mut y),
    }
    .expect(SPEC);
    B::float_from_data(TensorData::new(y, [batch, layout.rows]), &device)
}

pub(crate) fn backward<B: HostBackend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    grad_y: FloatTensor<B>,
    spec: &RbeSpec,
    want_grad_x: bool,
) -> RbeGrads<B> {
    if !(is_f32(&x) && is_f32(&coords) && is_f32(&grad_y)) {
        return fallback::backward::<B>(x, coords, bits, grad_y, spec, want_grad_x);
    }
    let layout = &spec.layout;
    let batch = dims(&x)[0];
    let device = B::float_device(&x);
    let (x, coords, bits, grad_y) = (
        B::floats(x),
        B::floats(coords),
        B::ints(bits),
        B::floats(grad_y),
    );
    let tensor = |values: Vec<f32>, cols: usize| {
        let rows = values.len() / cols;
        B::float_from_data(TensorData::new(values, [rows, cols]), &device)
    };
    if spec.format == SeedFormat::SignBlueprint {
        let grads = cpu::sign_backward(
            layout,
            &coords,
            &bits,
            &x,
            &grad_y,
            batch,
            want_grad_x,
            spec.transition_threshold.is_some(),
        )
        .expect(SPEC);
        return RbeGrads {
            x: grads.x.map(|g| tensor(g, layout.cols)),
            coords: tensor(grads.coords, 2),
            transitions: grads.cell_signal.map(|t| tensor(t, spec.signal_width())),
        };
    }
    let grads = cpu::backward(
        layout,
        &coords,
        &bits,
        &x,
        &grad_y,
        batch,
        want_grad_x,
        spec.transition_threshold,
    )
    .expect(SPEC);
    RbeGrads {
        x: grads.x.map(|g| tensor(g, layout.cols)),
        coords: tensor(grads.coords, 2),
        transitions: grads.transitions.map(|t| tensor(t, 4)),
    }
}

pub(crate) fn decode<B: HostBackend>(
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    spec: &RbeSpec,
) -> FloatTensor<B> {
    if !is_f32(&coords) || spec.format == SeedFormat::SignBlueprint {
        return fallback::decode::<B>(coords, bits, spec);
    }
    let layout = &spec.layout;
    let device = B::float_device(&coords);
    let w = cpu::decode(layout, &B::floats(coords), &B::ints(bits)).expect(SPEC);
    B::float_from_data(TensorData::new(w, [layout.rows, layout.cols]), &device)
}

pub(crate) fn apply_transitions<B: HostBackend>(
    bits: IntTensor<B>,
    counts: FloatTensor<B>,
) -> IntTensor<B> {
    if !is_f32(&counts) {
        return fallback::apply_transitions::<B>(bits, counts);
    }
    let (dtype, device, n) = (bits.dtype(), B::int_device(&bits), dims(&bits)[0]);
    let mut moved = B::ints(bits).to_vec();
    cpu::apply_transitions(&mut moved, &B::floats(counts)).expect(SPEC);
    // Back in the dtype the bits came in; i32 patterns sign-extend into wider ints.
    B::int_from_data(TensorData::new(moved, [n, 2]).convert_dtype(dtype), &device)
}
