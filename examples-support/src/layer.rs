//! One fully connected layer of any kind the examples compare: Burn's dense `Linear`, an
//! `RbeLinear`, the rank-`k` [`LowRankLinear`] baseline, or Burn's post-training
//! quantization ([`QuantizedLinear`]).

use burn::nn::Linear;
use burn::prelude::*;
use rbe_burn::{RbeBackend, RbeLinear};

pub use crate::bytes::{FLOAT_BYTES, ParamBytes};
use crate::low_rank::LowRankLinear;
use crate::quantized_linear::QuantizedLinear;

/// A linear map `[..., d_input] -> [..., d_output]`.
// A model holds a handful of these and never moves them in hot loops, so the variants' size
// difference costs nothing, and Burn has no `Module` for `Box<M>` to shrink it with.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Layer<B: Backend> {
    /// Burn's `Linear`: the reference.
    Dense(Linear<B>),
    /// Weights generated from RBE seeds.
    Rbe(RbeLinear<B>),
    /// `U V` of rank `k`.
    LowRank(LowRankLinear<B>),
    /// A weight Burn has quantized block-wise; evaluation only, since Burn records its
    /// quantized tensor as empty.
    Quantized(QuantizedLinear<B>),
}

impl<B: Backend> Layer<B> {
    /// Stored bytes of this layer.
    pub fn bytes(&self) -> ParamBytes {
        match self {
            Self::Dense(linear) => ParamBytes {
                weight: FLOAT_BYTES * linear.weight.shape().num_elements(),
                bias: linear
                    .bias
                    .as_ref()
                    .map_or(0, |b| FLOAT_BYTES * b.shape().num_elements()),
            },
            Self::Rbe(rbe) => {
                let storage = rbe.storage();
                ParamBytes {
                    weight: storage.seed_bytes + storage.residual_bytes,
                    bias: storage.bias_bytes,
                }
            }
            Self::LowRank(low_rank) => ParamBytes {
                weight: FLOAT_BYTES * low_rank.weight_params(),
                bias: FLOAT_BYTES * low_rank.bias_params(),
            },
            Self::Quantized(quantized) => quantized.bytes(),
        }
    }

    /// Bytes the dense `Linear` of the same shape stores, bias included.
    pub fn dense_bytes(&self) -> usize {
        match self {
            Self::Dense(linear) => FLOAT_BYTES * linear.num_params(),
            Self::Rbe(rbe) => rbe.storage().dense_bytes,
            Self::LowRank(low_rank) => FLOAT_BYTES * low_rank.dense_params(),
            Self::Quantized(quantized) => FLOAT_BYTES * quantized.dense_params(),
        }
    }

    /// The variant's name, as a saved record spells it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Dense(_) => "Dense",
            Self::Rbe(_) => "Rbe",
            Self::LowRank(_) => "LowRank",
            Self::Quantized(_) => "Quantized",
        }
    }
}

/// The variant a saved layer holds. Burn panics when a record is loaded into a different
/// variant, so loaders compare this with [`Layer::kind_name`] first.
pub fn record_kind_name<B: Backend>(record: &LayerRecord<B>) -> &'static str {
    match record {
        LayerRecord::Dense(_) => "Dense",
        LayerRecord::Rbe(_) => "Rbe",
        LayerRecord::LowRank(_) => "LowRank",
        LayerRecord::Quantized(_) => "Quantized",
    }
}

impl<B: RbeBackend> Layer<B> {
    /// Applies the layer to the last dimension.
    ///
    /// # Shapes
    /// - input: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Dense(linear) => linear.forward(input),
            Self::Rbe(rbe) => rbe.forward(input),
            Self::LowRank(low_rank) => low_rank.forward(input),
            Self::Quantized(quantized) => quantized.forward(input),
        }
    }
}
