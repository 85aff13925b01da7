//! The glue between Burn's CPU backends and the formats' native CPU kernels: contiguous f32
//! slices of the inputs in, the format's kernel, a fresh tensor out.
//!
//! Each CPU backend says how it exposes its tensors as slices ([`HostBackend`]), copying
//! only when it must; the three ops here are then shared. Float tensors of another dtype
//! (f16, bf16, f64 through Burn's dtype) take the format's tensor-op layer, which works in
//! any dtype.

use std::ops::Deref;

use burn::tensor::backend::Backend;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, Int, Tensor, TensorData, TensorMetadata};

use super::{RbeBackend, RbeGrads, RbeSpec, tensor_bits_from_latent};

/// The [`crate::RbeBackend`] methods of a [`HostBackend`]: every op goes to the shared
/// host path. Expands inside an `impl RbeBackend for ...` block.
macro_rules! rbe_backend_on_host {
    () => {
        fn rbe_forward(
            x: burn::tensor::ops::FloatTensor<Self>,
            coords: burn::tensor::ops::FloatTensor<Self>,
            bits: burn::tensor::ops::IntTensor<Self>,
            _probe: Option<burn::tensor::ops::FloatTensor<Self>>,
            spec: &$crate::backend::RbeSpec,
        ) -> burn::tensor::ops::FloatTensor<Self> {
            $crate::backend::host::forward::<Self>(x, coords, bits, spec)
        }

        fn rbe_backward(
            x: burn::tensor::ops::FloatTensor<Self>,
            coords: burn::tensor::ops::FloatTensor<Self>,
            bits: burn::tensor::ops::IntTensor<Self>,
            grad_y: burn::tensor::ops::FloatTensor<Self>,
            spec: &$crate::backend::RbeSpec,
            grad_x: bool,
        ) -> $crate::backend::RbeGrads<Self> {
            $crate::backend::host::backward::<Self>(x, coords, bits, grad_y, spec, grad_x)
        }

        fn rbe_decode(
            coords: burn::tensor::ops::FloatTensor<Self>,
            bits: burn::tensor::ops::IntTensor<Self>,
            spec: &$crate::backend::RbeSpec,
        ) -> burn::tensor::ops::FloatTensor<Self> {
            $crate::backend::host::decode::<Self>(coords, bits, spec)
        }

        fn rbe_bits_from_latent(
            latent: burn::tensor::ops::FloatTensor<Self>,
            coords: burn::tensor::ops::FloatTensor<Self>,
            spec: &$crate::backend::RbeSpec,
        ) -> burn::tensor::ops::IntTensor<Self> {
            $crate::backend::host::bits_from_latent::<Self>(latent, coords, spec)
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

pub(crate) fn forward<B: HostBackend + RbeBackend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    spec: &RbeSpec,
) -> FloatTensor<B> {
    if !(is_f32(&x) && is_f32(&coords)) {
        let bits = Tensor::from_primitive(bits);
        return spec
            .format
            .tensor_forward::<B>(x, coords, bits, &spec.layout);
    }
    let layout = &spec.layout;
    let batch = dims(&x)[0];
    let device = B::float_device(&x);
    let (x, coords, bits) = (B::floats(x), B::floats(coords), B::ints(bits));
    let mut y = vec![0.0; batch * layout.rows];
    spec.format
        .cpu_forward(layout, &coords, &bits, &x, batch, &mut y, &spec.cache)
        .expect(SPEC);
    B::float_from_data(TensorData::new(y, [batch, layout.rows]), &device)
}

pub(crate) fn backward<B: HostBackend + RbeBackend>(
    x: FloatTensor<B>,
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    grad_y: FloatTensor<B>,
    spec: &RbeSpec,
    want_grad_x: bool,
) -> RbeGrads<B> {
    let wanted = spec.wanted(want_grad_x);
    if !(is_f32(&x) && is_f32(&coords) && is_f32(&grad_y)) {
        let bits = Tensor::from_primitive(bits);
        return spec
            .format
            .tensor_backward::<B>(x, coords, bits, grad_y, &spec.layout, wanted);
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
    let grads = spec
        .format
        .cpu_backward(
            layout,
            &coords,
            &bits,
            &x,
            &grad_y,
            batch,
            wanted,
            &spec.cache,
        )
        .expect(SPEC);
    let signal_width = spec.signal_width();
    let tensor = |values: Vec<f32>, cols: usize| {
        let rows = values.len() / cols;
        B::float_from_data(TensorData::new(values, [rows, cols]), &device)
    };
    RbeGrads::<B> {
        x: grads.x.map(|g| tensor(g, layout.cols)),
        coords: tensor(grads.coords, 2),
        signal: grads.signal.map(|t| tensor(t, signal_width)),
    }
}

pub(crate) fn decode<B: HostBackend + RbeBackend>(
    coords: FloatTensor<B>,
    bits: IntTensor<B>,
    spec: &RbeSpec,
) -> FloatTensor<B> {
    if !is_f32(&coords) {
        let bits = Tensor::from_primitive(bits);
        return spec.format.tensor_decode::<B>(coords, bits, &spec.layout);
    }
    let layout = &spec.layout;
    let device = B::float_device(&coords);
    let w = spec
        .format
        .cpu_decode(layout, &B::floats(coords), &B::ints(bits))
        .expect(SPEC);
    B::float_from_data(TensorData::new(w, [layout.rows, layout.cols]), &device)
}

pub(crate) fn bits_from_latent<B: HostBackend + RbeBackend>(
    latent: FloatTensor<B>,
    coords: FloatTensor<B>,
    spec: &RbeSpec,
) -> IntTensor<B> {
    if !(is_f32(&latent) && is_f32(&coords)) {
        return tensor_bits_from_latent::<B>(latent, coords, spec);
    }
    let layout = &spec.layout;
    let device = B::float_device(&latent);
    let native = spec.format.cpu_bits_from_latent(
        layout,
        &B::floats(coords.clone()),
        &B::floats(latent.clone()),
    );
    match native {
        Some(bits) => {
            let shape = [layout.num_blocks(), spec.format.bit_words()];
            Tensor::<B, 2, Int>::from_data(TensorData::new(bits.expect(SPEC), shape), &device)
                .into_primitive()
        }
        None => tensor_bits_from_latent::<B>(latent, coords, spec),
    }
}
