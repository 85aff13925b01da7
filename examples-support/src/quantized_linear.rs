//! Burn's own post-training quantization of one dense layer: [`QuantizedLinear`], the
//! block-wise grids it is quantized to ([`WeightQuant`]), and how its bytes are counted.
//! The MNIST comparison (`mnist::quantized`) and the transformer's compressed-from-dense
//! runs both build on it.
//!
//! Each weight matrix is quantized block-wise with Burn's [`Quantizer`] (min-max
//! calibration, symmetric scale per block, the grid of a [`QuantValue`], scales stored as
//! f32); biases stay f32. [`QuantizedLinear::forward`] does what Burn 0.21's `Linear` does
//! with a quantized weight: dequantize it on the device (the backend's own kernel), then
//! the float matmul. It dequantizes in the orientation the weight was quantized in, which
//! `Linear` cannot: Burn's block-wise dequantization of a transposed view takes the blocks
//! along the view's last axis, not along the one they were made on (Flex and WGPU alike).
//!
//! Bytes are counted as the MNIST table counts them (stored bytes of the weight matrices,
//! biases apart): `bits / 8` per weight plus one f32 scale per block. Burn packs 4-bit
//! values 8 to a `u32` and 2-bit values 16 to a `u32` along the blocks' axis, which the
//! shapes accepted here fill exactly, so the count is what the backend stores.
//!
//! A [`QuantizedLinear`] is a Burn module so that it can sit in a model's [`Layer`], but
//! Burn records plain tensors as empty: it is for evaluation, not for saving.
//!
//! [`Layer`]: crate::layer::Layer

use burn::module::{ModuleMapper, Param, Quantizer};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::ops::QuantizedTensor;
use burn::tensor::quantization::{
    Calibration, QTensorPrimitive, QuantLevel, QuantParam, QuantScheme, QuantValue,
};

use crate::bytes::{FLOAT_BYTES, ParamBytes};

/// Bytes of one stored scale: the schemes here keep them as f32 ([`QuantParam::F32`]).
pub const SCALE_BYTES: usize = 4;

/// Bits of a packed storage word: Burn stores sub-byte values packed into `u32`.
const PACK_BITS: usize = 32;

/// The integer grid a block's weights are rounded to (Burn's [`QuantValue`] of the same
/// name). Every grid is symmetric-mode: `scale = 2 max|w| / (hi - lo)`, no offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantGrid {
    /// 4 bits, full range `[-8, 7]`.
    Q4f,
    /// 4 bits, symmetric range `[-7, 7]`.
    Q4s,
    /// 2 bits, full range `[-2, 1]`.
    Q2f,
    /// 2 bits, symmetric range `[-1, 1]` (ternary).
    Q2s,
}

impl QuantGrid {
    /// Burn's value type.
    pub fn value(self) -> QuantValue {
        match self {
            Self::Q4f => QuantValue::Q4F,
            Self::Q4s => QuantValue::Q4S,
            Self::Q2f => QuantValue::Q2F,
            Self::Q2s => QuantValue::Q2S,
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Q4f => "q4f",
            Self::Q4s => "q4s",
            Self::Q2f => "q2f",
            Self::Q2s => "q2s",
        }
    }

    /// Stored bits per weight.
    pub fn bits(self) -> usize {
        self.value().size_bits()
    }
}

/// Which axis of a layer's weight the blocks run along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockAxis {
    /// Blocks of consecutive inputs of one output unit (along the reduction axis, the
    /// usual convention, e.g. GGUF's `Q4_0`). The weight is quantized as `Wᵀ`
    /// `[d_output, d_input]` and the `Linear` holds its transposed view.
    Input,
    /// Blocks of consecutive output units of one input: along the last axis of the
    /// `[d_input, d_output]` matrix Burn's `Linear` stores, used when `d_input` does not
    /// split into blocks.
    Output,
}

/// Block-wise post-training quantization of the weight matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightQuant {
    /// The integer grid.
    pub grid: QuantGrid,
    /// Weights per block, each with its own f32 scale.
    pub block_size: usize,
}

/// Why a model could not be quantized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantError {
    /// Burn's block sizes are one byte: 1..=255.
    BlockSize(usize),
    /// Only dense layers are quantized here.
    NotDense {
        /// `hidden` or `head`.
        layer: &'static str,
        /// What the layer is.
        kind: &'static str,
    },
    /// Neither axis of the layer's weight splits into whole blocks and whole packed words.
    Shape {
        /// `hidden` or `head`.
        layer: &'static str,
        /// `[d_input, d_output]`.
        dims: [usize; 2],
        /// The length each axis would have to be a multiple of.
        multiple: usize,
    },
}

impl std::fmt::Display for QuantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BlockSize(size) => {
                write!(
                    f,
                    "the block size must be in 1..=255 (Burn stores it in a byte), got {size}"
                )
            }
            Self::NotDense { layer, kind } => write!(
                f,
                "only dense layers are quantized, but the {layer} layer is {kind}"
            ),
            Self::Shape {
                layer,
                dims,
                multiple,
            } => write!(
                f,
                "cannot quantize the {layer} layer's {}x{} weight: neither side is a multiple \
                 of {multiple} (the block size and the values per packed u32)",
                dims[0], dims[1]
            ),
        }
    }
}

impl std::error::Error for QuantError {}

impl WeightQuant {
    /// Checks the block size.
    pub fn new(grid: QuantGrid, block_size: usize) -> Result<Self, QuantError> {
        if !(1..=255).contains(&block_size) {
            return Err(QuantError::BlockSize(block_size));
        }
        Ok(Self { grid, block_size })
    }

    /// `q4f-b32` and the like.
    pub fn name(&self) -> String {
        format!("{}-b{}", self.grid.name(), self.block_size)
    }

    /// Burn's scheme: the backend's default storage (packed `u32` on CubeCL, `i8` on Flex),
    /// this grid, one block of `block_size` along the last axis, f32 scales.
    pub fn scheme<B: Backend>(&self) -> QuantScheme {
        // `new` keeps the block size within a byte.
        let block = u8::try_from(self.block_size).unwrap_or(u8::MAX);
        <QuantizedTensor<B> as QTensorPrimitive>::default_scheme()
            .with_value(self.grid.value())
            .with_level(QuantLevel::block([block]))
            .with_param(QuantParam::F32)
    }

    /// What the length of a blocked axis must be a multiple of: whole blocks, and whole
    /// `u32` words of packed values.
    pub fn axis_multiple(&self) -> usize {
        lcm(self.block_size, PACK_BITS / self.grid.bits())
    }

    /// The axis the blocks of a `[d_input, d_output]` weight run along: the input axis when
    /// it splits into whole blocks, else the output axis; `None` when neither does.
    pub fn block_axis(&self, d_input: usize, d_output: usize) -> Option<BlockAxis> {
        let fits = |len: usize| len.is_multiple_of(self.axis_multiple());
        if fits(d_input) {
            Some(BlockAxis::Input)
        } else if fits(d_output) {
            Some(BlockAxis::Output)
        } else {
            None
        }
    }

    /// Stored bytes of a quantized matrix of `weights` entries: the packed values plus one
    /// f32 scale per block.
    pub fn weight_bytes(&self, weights: usize) -> usize {
        (weights * self.grid.bits()).div_ceil(8) + SCALE_BYTES * weights.div_ceil(self.block_size)
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}

/// A dense layer whose weight Burn has quantized; the bias stays f32.
#[derive(Module, Debug)]
pub struct QuantizedLinear<B: Backend> {
    /// The quantized weight with its blocks along the last axis: `[d_input, d_output]`
    /// for [`BlockAxis::Output`], `[d_output, d_input]` for [`BlockAxis::Input`].
    pub weight: Tensor<B, 2>,
    /// Which axis of the layer the blocks run along.
    pub axis: BlockAxis,
    /// `[d_output]`.
    pub bias: Option<Tensor<B, 1>>,
}

impl<B: Backend> QuantizedLinear<B> {
    /// `input W + b` with `W` dequantized on the device.
    ///
    /// # Shapes
    /// - input: `[..., d_input]`
    /// - output: `[..., d_output]`
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let weight = self.dequantized_weight();
        burn::tensor::module::linear(input, weight, self.bias.clone())
    }

    /// The dequantized weight as `Linear` holds it.
    ///
    /// # Shapes
    /// - output: `[d_input, d_output]`
    pub fn dequantized_weight(&self) -> Tensor<B, 2> {
        let weight = self.weight.clone().dequantize();
        match self.axis {
            BlockAxis::Output => weight,
            BlockAxis::Input => weight.transpose(),
        }
    }
}

impl<B: Backend> QuantizedLinear<B> {
    /// Quantizes a dense layer's weight with its blocks along `axis` (pick it with
    /// [`WeightQuant::block_axis`]); the bias is kept as it is.
    ///
    /// # Shapes
    /// - `linear.weight`: `[d_input, d_output]`, whose `axis` side is a multiple of
    ///   [`WeightQuant::axis_multiple`]
    pub fn quantize(linear: Linear<B>, quant: &WeightQuant, axis: BlockAxis) -> Self {
        let Linear { weight, bias } = linear;
        let weight: Param<Tensor<B, 2>> = match axis {
            BlockAxis::Output => weight,
            // Burn blocks the last axis of the tensor as laid out in memory: hand it `Wᵀ`
            // materialised row-major, not a strided view of `W`.
            BlockAxis::Input => weight.map(|w| {
                let device = w.device();
                Tensor::from_data(w.transpose().into_data(), &device)
            }),
        };
        let mut quantizer = Quantizer {
            calibration: Calibration::MinMax,
            scheme: quant.scheme::<B>(),
        };
        let weight = ModuleMapper::<B>::map_float(&mut quantizer, weight).into_value();
        Self {
            weight,
            axis,
            bias: bias.map(Param::into_value),
        }
    }

    /// Stored bytes: the quantized weight (values and one f32 scale per block, read from
    /// the weight's own scheme) and the f32 bias.
    pub fn bytes(&self) -> ParamBytes {
        let weights = self.weight.shape().num_elements();
        let weight = match self.weight.dtype() {
            DType::QFloat(scheme) => {
                let block = match scheme.level {
                    QuantLevel::Block(size) => size.num_elements(),
                    QuantLevel::Tensor => weights,
                };
                (weights * scheme.value.size_bits()).div_ceil(8)
                    + SCALE_BYTES * weights.div_ceil(block.max(1))
            }
            // Not quantized (a backend that kept the floats): what is stored is f32.
            _ => FLOAT_BYTES * weights,
        };
        ParamBytes {
            weight,
            bias: self
                .bias
                .as_ref()
                .map_or(0, |b| FLOAT_BYTES * b.shape().num_elements()),
        }
    }

    /// Floats of the dense `Linear` of the same shape, bias included.
    pub fn dense_params(&self) -> usize {
        self.weight.shape().num_elements()
            + self.bias.as_ref().map_or(0, |b| b.shape().num_elements())
    }
}

// Flex: Burn 0.21's NdArray quantizes to 8 bits only.
#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::backend::Flex;
    use burn::nn::LinearConfig;

    use super::*;

    #[test]
    fn bytes_are_read_from_the_quantized_weight_s_scheme() {
        type B = Flex<f32, i32>;
        let device = Default::default();
        let linear = LinearConfig::new(64, 32).init::<B>(&device);
        for grid in [QuantGrid::Q4f, QuantGrid::Q2s] {
            let quant = WeightQuant::new(grid, 32).unwrap();
            let axis = quant.block_axis(64, 32).unwrap();
            let q = QuantizedLinear::quantize(linear.clone(), &quant, axis);
            assert_eq!(
                q.bytes().weight,
                quant.weight_bytes(64 * 32),
                "{}",
                quant.name()
            );
            assert_eq!(q.bytes().bias, 4 * 32);
            assert_eq!(q.dense_params(), 64 * 32 + 32);
            assert_eq!(q.dequantized_weight().dims(), [64, 32]);
        }
    }
}
