//! [`RbeBackend`] for `Fusion<B>`, which is what `burn::backend::Wgpu` and
//! `burn::backend::Cuda` are under Burn's default features.
//!
//! Fusion records operations on a lazy stream and only executes them when it has to. Each RBE
//! primitive is registered on that stream as a [`CustomOpIr`] whose [`Operation`] calls the
//! inner backend's primitive (the fused CubeCL kernels for `CubeBackend`) on the resolved
//! handles. The fusion optimiser treats the op as opaque: element-wise work around it is
//! still fused, the RBE kernels run as they are.

use std::marker::PhantomData;

use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, Shape};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use crate::backend::RbeBackend;
use crate::spec::{RbeGrads, RbeSpec};

type Handles<B> =
    HandleContainer<<<B as FusionBackend>::FusionRuntime as FusionRuntime>::FusionHandle>;

/// Which primitive a recorded operation runs.
#[derive(Debug, Clone, Copy)]
enum Primitive {
    /// Inputs `[x, coords, bits]`, outputs `[y]`.
    Forward,
    /// Inputs `[x, coords, bits, grad_y]`, outputs `[grad_x, grad_coords]` or
    /// `[grad_x, grad_coords, transitions]` when the spec has a threshold.
    Backward,
    /// Inputs `[coords, bits]`, outputs `[w]`.
    Decode,
}

impl Primitive {
    fn name(self) -> &'static str {
        match self {
            Self::Forward => "rbe_forward",
            Self::Backward => "rbe_backward",
            Self::Decode => "rbe_decode",
        }
    }
}

/// One RBE primitive on the fusion stream.
#[derive(Debug)]
struct RbeOp<B> {
    desc: CustomOpIr,
    primitive: Primitive,
    spec: RbeSpec,
    _backend: PhantomData<B>,
}

impl<B: FusionBackend + RbeBackend> Operation<B::FusionRuntime> for RbeOp<B> {
    fn execute(&self, handles: &mut Handles<B>) {
        let inputs = &self.desc.inputs;
        let outputs = &self.desc.outputs;
        let float = |handles: &mut Handles<B>, i: usize| handles.get_float_tensor::<B>(&inputs[i]);
        match self.primitive {
            Primitive::Forward => {
                let x = float(handles, 0);
                let coords = float(handles, 1);
                let bits = handles.get_int_tensor::<B>(&inputs[2]);
                let y = B::rbe_forward(x, coords, bits, &self.spec);
                handles.register_float_tensor::<B>(&outputs[0].id, y);
            }
            Primitive::Backward => {
                let x = float(handles, 0);
                let coords = float(handles, 1);
                let bits = handles.get_int_tensor::<B>(&inputs[2]);
                let grad_y = float(handles, 3);
                let grads = B::rbe_backward(x, coords, bits, grad_y, &self.spec);
                handles.register_float_tensor::<B>(&outputs[0].id, grads.x);
                handles.register_float_tensor::<B>(&outputs[1].id, grads.coords);
                // The output list was sized from the same spec, so both sides agree.
                if let (Some(out), Some(counts)) = (outputs.get(2), grads.transitions) {
                    handles.register_float_tensor::<B>(&out.id, counts);
                }
            }
            Primitive::Decode => {
                let coords = float(handles, 0);
                let bits = handles.get_int_tensor::<B>(&inputs[1]);
                let w = B::rbe_decode(coords, bits, &self.spec);
                handles.register_float_tensor::<B>(&outputs[0].id, w);
            }
        }
    }
}

/// Registers `primitive` on the streams of its inputs and returns its outputs, one per
/// `(shape, dtype)`.
fn register<B: FusionBackend + RbeBackend>(
    primitive: Primitive,
    spec: &RbeSpec,
    inputs: Vec<FusionTensor<B::FusionRuntime>>,
    outputs: Vec<(Shape, DType)>,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let client = inputs[0].client.clone();
    let streams = OperationStreams::with_inputs(&inputs);
    let outputs: Vec<TensorIr> = outputs
        .into_iter()
        .map(|(shape, dtype)| TensorIr::uninit(client.create_empty_handle(), shape, dtype))
        .collect();
    let inputs: Vec<TensorIr> = inputs.into_iter().map(FusionTensor::into_ir).collect();
    let desc = CustomOpIr::new(primitive.name(), &inputs, &outputs);
    client.register(
        streams,
        OperationIr::Custom(desc.clone()),
        RbeOp::<B> {
            desc,
            primitive,
            spec: *spec,
            _backend: PhantomData,
        },
    )
}

impl<B: FusionBackend + RbeBackend> RbeBackend for Fusion<B> {
    fn rbe_forward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        let y = (Shape::new([x.shape[0], spec.layout.rows]), x.dtype);
        register::<B>(Primitive::Forward, spec, vec![x, coords, bits], vec![y]).output()
    }

    fn rbe_backward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        grad_y: FloatTensor<Self>,
        spec: &RbeSpec,
    ) -> RbeGrads<Self> {
        let mut outputs = vec![
            (x.shape.clone(), x.dtype),
            (coords.shape.clone(), coords.dtype),
        ];
        if spec.transition_threshold.is_some() {
            outputs.push((Shape::new([spec.layout.num_blocks(), 4]), x.dtype));
        }
        let inputs = vec![x, coords, bits, grad_y];
        let mut out = register::<B>(Primitive::Backward, spec, inputs, outputs).into_iter();
        let (grad_x, grad_coords) = (
            out.next().expect("registered above"),
            out.next().expect("registered above"),
        );
        RbeGrads {
            x: grad_x,
            coords: grad_coords,
            transitions: out.next(),
        }
    }

    fn rbe_decode(
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        let w = (
            Shape::new([spec.layout.rows, spec.layout.cols]),
            coords.dtype,
        );
        register::<B>(Primitive::Decode, spec, vec![coords, bits], vec![w]).output()
    }
}
