//! [`RbeBackend`] for `Autodiff<B>`: the forward runs on the inner backend and a custom
//! [`Backward`] step sends
//! - `dL/dx` to the input,
//! - the analytic `dL/d(coords)` to the float seed parameter,
//! - the bits' signal to the probe, where [`crate::apply_state_transitions`] finds it.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::FloatDType;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::{FloatTensor, IntTensor};

use super::{RbeBackend, RbeSpec};

#[derive(Debug)]
struct RbeLinearBackward;

impl<B: RbeBackend> Backward<B, 3> for RbeLinearBackward {
    /// `(x, coords)` checkpoints, the untracked bits and the spec.
    type State = (NodeId, NodeId, IntTensor<B>, RbeSpec);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_coords, node_probe] = ops.parents;
        let grad_y = grads.consume::<B>(&ops.node);
        let (x_state, coords_state, bits, spec) = ops.state;
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
        let coords: FloatTensor<B> = checkpointer.retrieve_node_output(coords_state);

        // The signal is only worth computing when someone will read it.
        let spec = RbeSpec {
            signal: spec.signal && node_probe.is_some(),
            ..spec
        };
        // A first layer's input needs no gradient: skip the `G W` product.
        let out = B::rbe_backward(x, coords, bits, grad_y, &spec, node_x.is_some());

        if let (Some(node), Some(grad_x)) = (node_x, out.x) {
            grads.register::<B>(node.id, grad_x);
        }
        if let Some(node) = node_coords {
            grads.register::<B>(node.id, out.coords);
        }
        if let (Some(node), Some(signal)) = (node_probe, out.signal) {
            grads.register::<B>(node.id, signal);
        }
    }
}

impl<B: RbeBackend, C: CheckpointStrategy> RbeBackend for Autodiff<B, C> {
    fn rbe_forward(
        x: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        probe: Option<FloatTensor<Self>>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        // Without a probe, a zero leaf that requires no gradient makes the signal path
        // inert.
        let probe = probe.unwrap_or_else(|| {
            Self::from_inner(B::float_zeros(
                [spec.layout.num_blocks(), spec.signal_width()].into(),
                &B::float_device(&coords.primitive),
                FloatDType::F32,
            ))
        });
        match RbeLinearBackward
            .prepare::<C>([x.node.clone(), coords.node.clone(), probe.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let coords_state = prep.checkpoint(&coords);
                let output =
                    B::rbe_forward(x.primitive, coords.primitive, bits.clone(), None, spec);
                prep.finish((x_state, coords_state, bits, spec.clone()), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rbe_forward(
                x.primitive,
                coords.primitive,
                bits,
                None,
                spec,
            )),
        }
    }

    fn rbe_decode(
        coords: FloatTensor<Self>,
        bits: IntTensor<Self>,
        spec: &RbeSpec,
    ) -> FloatTensor<Self> {
        // Inspection only: the decoded matrix is a non-differentiable leaf.
        Self::from_inner(B::rbe_decode(coords.primitive, bits, spec))
    }

    fn rbe_bits_from_latent(
        latent: FloatTensor<Self>,
        coords: FloatTensor<Self>,
        spec: &RbeSpec,
    ) -> IntTensor<Self> {
        // Bits carry no gradient: the latent weights receive theirs through the forward.
        B::rbe_bits_from_latent(latent.primitive, coords.primitive, spec)
    }
}
