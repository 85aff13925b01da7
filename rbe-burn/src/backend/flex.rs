//! [`RbeBackend`] for Flex, Burn 0.21's recommended CPU backend: the formats' native CPU
//! kernels through [`super::host`], reading contiguous f32 and i32 tensors in
//! place (no copy) and handing the kernels' output buffers to Flex without a copy either.

use std::ops::Deref;

use burn::tensor::DType;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn_flex::{Flex, FlexTensor};

use super::RbeBackend;
use super::host::{self, HostBackend};

/// A contiguous f32 Flex tensor, read as a slice.
pub(crate) struct FlexFloats(FlexTensor);

impl Deref for FlexFloats {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        self.0
            .as_slice::<f32>()
            .expect("contiguous f32 by construction")
    }
}

/// Int values: the i32 tensor itself when it is contiguous, else a converted copy.
pub(crate) enum FlexInts {
    Held(FlexTensor),
    Owned(Vec<i32>),
}

impl Deref for FlexInts {
    type Target = [i32];

    fn deref(&self) -> &[i32] {
        match self {
            Self::Held(t) => t.as_slice::<i32>().expect("contiguous i32 by construction"),
            Self::Owned(v) => v,
        }
    }
}

impl HostBackend for Flex {
    type Floats = FlexFloats;
    type Ints = FlexInts;

    fn floats(t: FloatTensor<Self>) -> FlexFloats {
        if t.as_slice::<f32>().is_some() {
            FlexFloats(t)
        } else {
            FlexFloats(t.to_contiguous())
        }
    }

    fn ints(t: IntTensor<Self>) -> FlexInts {
        if t.dtype() == DType::I32 && t.as_slice::<i32>().is_some() {
            FlexInts::Held(t)
        } else {
            FlexInts::Owned(host::ints_via_data::<Self>(t))
        }
    }
}

impl RbeBackend for Flex {
    host::rbe_backend_on_host!();
}
