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
use burn::tensor::{DType, Element, Shape};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use super::{RbeBackend, RbeGrads, RbeSpec};

type Handles<B> =
    HandleContainer<<<B as FusionBackend>::FusionRuntime as FusionRuntime>::FusionHandle>;

/// Which primitive a recorded operation runs.
#[derive(Debug, Clone)]
enum Primitive {
    /// Inputs `[x, coords, bits]`, outputs `[y]`.
    Forward(RbeSpec),
    /// Inputs `[x, coords, bits, grad_y]`, outputs `[grad_coords]`, then `grad_x` when
    /// asked for, then the bits' signal when the spec asks for it.
    Backward { spec: RbeSpec, grad_x: bool },
    /// Inputs `[coords, bits]`, outputs `[w]`.
    Decode(RbeSpec),
    /// Inputs `[latent, coords]`, outputs `[bits]`.
    BitsFromLatent(RbeSpec),
}

impl Primitive {
    fn name(&self) -> &'static str {
        match self {
            Self::Forward(_) => "rbe_forward",
            Self::Backward { .. } => "rbe_backward",
            Self::Decode(_) => "rbe_decode",
            Self::BitsFromLatent(_) => "rbe_bits_from_latent",
        }
    }
}

/// One RBE primitive on the fusion stream.
#[derive(Debug)]
struct RbeOp<B> {
    desc: CustomOpIr,
    primitive: Primitive,
    _backend: PhantomData<B>,
}

impl<B: FusionBackend + RbeBackend> Operation<B::FusionRuntime> for RbeOp<B> {
    fn execute(&self, handles: &mut Handles<B>) {
        let inputs = &self.desc.inputs;
        let outputs = &self.desc.outputs;
        let float = |handles: &mut Handles<B>, i: usize| handles.get_float_tensor::<B>(&inputs[i]);
        match &self.primitive {
            Primitive::Forward(spec) => {
                let x = float(handles, 0);
                let coords = float(handles, 1);
                let bits = handles.get_int_tensor::<B>(&inputs[2]);
                let y = B::rbe_forward(x, coords, bits, None, spec);
                handles.register_float_tensor::<B>(&outputs[0].id, y);
            }
            Primitive::Backward { spec, grad_x } => {
                let x = float(handles, 0);
                let coords = float(handles, 1);
                let bits = handles.get_int_tensor::<B>(&inputs[2]);
                let grad_y = float(handles, 3);
                let grads = B::rbe_backward(x, coords, bits, grad_y, spec, *grad_x);
                // The output list was sized from the same flags, so both sides agree.
                let optional = grads.x.into_iter().chain(grads.signal);
                for (out, tensor) in outputs
                    .iter()
                    .zip(std::iter::once(grads.coords).chain(optional))
                {
                    handles.register_float_tensor::<B>(&out.id, tensor);
                }
            }
            Primitive::Decode(spec) => {
                let coords = float(handles, 0);
                let bits = handles.get_int_tensor::<B>(&inputs[1]);
                let w = B::rbe_decode(coords, bits, spec);
                handles.register_float_tensor::<B>(&outputs[0].id, w);
            }
            Primitive::BitsFromLatent(spec) => {
                let latent = float(handles, 0);
                let coords = float(handles, 1);
                let bits = B::rbe_bits_from_latent(latent, coords, spec);
                handles.register_int_tensor::<B>(&outputs[0].id, bits);
            }
        }
    }
}

/// Registers `primitive` on the streams of its inputs and returns its outputs, one per
/// `(shape, dtype)`.
fn register<B: FusionBackend + RbeBackend>(
    primitive: Primitive,
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
            _backend: PhantomData,
        },
    )
}

impl<B: FusionBackend + RbeBackend> RbeBackend for Fusion<B> {
    fn rbe_forward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        _probe: Option<FloatTensor<Self>>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        let y = (Shape::new([x.shape[0], spec.layout.rows]), x.dtype);
        register::<B>(
            Primitive::Forward(spec.clone()),
            vec![x, coords, bits],
            vec![y],
        )
        .output()
    }

    fn rbe_backward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        grad_y: FloatTensor<Self>,
        spec: &RbeSpec,
        grad_x: bool,
    ) -> RbeGrads<Self> {
        let mut outputs = vec![(coords.shape.clone(), coords.dtype)];
        if grad_x {
            outputs.push((x.shape.clone(), x.dtype));
        }
        if spec.signal {
            outputs.push((
                Shape::new([spec.layout.num_blocks(), spec.signal_width()]),
                x.dtype,
            ));
        }
        let primitive = Primitive::Backward {
            spec: spec.clone(),
            grad_x,
        };
        let inputs = vec![x, coords, bits, grad_y];
        let mut out = register::<B>(primitive, inputs, outputs).into_iter();
        let grad_coords = out.next().expect("registered above");
        RbeGrads::<Self> {
            x: if grad_x { out.next() } else { None },
            coords: grad_coords,
            signal: out.next(),
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
        register::<B>(Primitive::Decode(spec.clone()), vec![coords, bits], vec![w]).output()
    }

    fn rbe_bits_from_latent(
        latent: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        spec: &RbeSpec,
    ) -> IntTensor<Self> {
        let bits = (
            Shape::new([spec.layout.num_blocks(), spec.format.bit_words()]),
            <B::IntElem as Element>::dtype(),
        );
        register::<B>(
            Primitive::BitsFromLatent(spec.clone()),
            vec![latent, coords],
            vec![bits],
        )
        .output()
    }
}
