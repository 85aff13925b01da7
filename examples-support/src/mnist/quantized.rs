//! Burn's own post-training quantization of a trained dense classifier: the baseline a
//! compressed model has to beat at the same bytes.
//!
//! Each weight matrix is quantized block-wise with Burn's [`Quantizer`] (min-max
//! calibration, symmetric scale per block, the grid of a [`QuantValue`], scales stored as
//! f32); biases stay f32. [`QuantizedLinear::forward`] does what Burn 0.21's `Linear` does
//! with a quantized weight: dequantize it on the device (the backend's own kernel), then
//! the float matmul. It dequantizes in the orientation the weight was quantized in, which
//! `Linear` cannot: Burn's block-wise dequantization of a transposed view takes the blocks
//! along the view's last axis, not along the one they were made on (Flex and WGPU alike).
//!
//! Bytes are counted as the other rows of the MNIST table count them (stored bytes of the
//! weight matrices, biases apart): `bits / 8` per weight plus one f32 scale per block. Burn
//! packs 4-bit values 8 to a `u32` and 2-bit values 16 to a `u32` along the blocks' axis,
//! which the shapes accepted here fill exactly, so the count is what the backend stores.

use std::path::PathBuf;

use burn::data::dataloader::DataLoaderBuilder;
use burn::module::{ModuleMapper, Param, Quantizer};
use burn::nn::{Linear, Relu};
use burn::prelude::*;
use burn::tensor::ops::QuantizedTensor;
use burn::tensor::quantization::{
    Calibration, QTensorPrimitive, QuantLevel, QuantParam, QuantScheme, QuantValue,
};
use rbe_burn::RbeBackend;

use super::data::{DataDir, Mnist, MnistBatcher, MnistSlice};
use super::model::{Mlp, ModelKind};
use super::training::{self, Accuracy, TrainError};
use crate::backend::{BackendJob, BackendKind};
use crate::layer::{FLOAT_BYTES, Layer, ParamBytes};

/// Bytes of one stored scale: the schemes here keep them as f32 ([`QuantParam::F32`]).
pub const SCALE_BYTES: usize = 4;

/// Bits of a packed storage word: Burn stores sub-byte values packed into `u32`.
const PACK_BITS: usize = 32;

/// Images per evaluation batch (no gradients are kept).
const EVAL_BATCH: usize = 500;

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
#[derive(Debug, Clone)]
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

/// `head(relu(hidden(x)))` with Burn-quantized weights.
#[derive(Debug, Clone)]
pub struct QuantizedMlp<B: Backend> {
    /// 784 -> d_hidden.
    pub hidden: QuantizedLinear<B>,
    /// d_hidden -> 10.
    pub head: QuantizedLinear<B>,
    /// ReLU between the two.
    pub activation: Relu,
    /// Stored bytes: quantized weights (values and scales) and f32 biases.
    pub bytes: ParamBytes,
}

impl<B: Backend> QuantizedMlp<B> {
    /// Class logits.
    ///
    /// # Shapes
    /// - images: `[batch, 784]`
    /// - output: `[batch, 10]`
    pub fn forward(&self, images: Tensor<B, 2>) -> Tensor<B, 2> {
        let hidden = self.activation.forward(self.hidden.forward(images));
        self.head.forward(hidden)
    }

    /// The blocks' axes of the hidden layer and the head.
    pub fn axes(&self) -> [BlockAxis; 2] {
        [self.hidden.axis, self.head.axis]
    }

    /// Classifies every image of `dataset` and counts the correct ones.
    pub fn evaluate(&self, dataset: MnistSlice, batch_size: usize, device: &B::Device) -> Accuracy {
        let loader = DataLoaderBuilder::<B, _, _>::new(MnistBatcher)
            .batch_size(batch_size.max(1))
            .set_device(device.clone())
            .build(dataset);
        let mut accuracy = Accuracy {
            correct: 0,
            total: 0,
        };
        for batch in loader.iter() {
            let predicted = self.forward(batch.images).argmax(1).flatten::<1>(0, 1);
            accuracy.total += predicted.dims()[0];
            accuracy.correct += predicted
                .equal(batch.targets)
                .int()
                .sum()
                .into_scalar()
                .elem::<i64>() as usize;
        }
        accuracy
    }
}

/// Quantizes the weight matrices of a dense classifier with Burn's [`Quantizer`]; biases
/// stay f32.
///
/// # Shapes
/// - hidden weight: `[784, d_hidden]`, head weight: `[d_hidden, 10]` (as Burn's `Linear`
///   stores them); each is blocked along an axis [`WeightQuant::block_axis`] accepts.
pub fn quantize_mlp<B: Backend>(
    model: Mlp<B>,
    quant: &WeightQuant,
) -> Result<QuantizedMlp<B>, QuantError> {
    let Mlp {
        hidden,
        head,
        activation,
    } = model;
    let (hidden, hidden_bytes) = quantize_layer(hidden, "hidden", quant)?;
    let (head, head_bytes) = quantize_layer(head, "head", quant)?;
    Ok(QuantizedMlp {
        hidden,
        head,
        activation,
        bytes: hidden_bytes + head_bytes,
    })
}

fn quantize_layer<B: Backend>(
    layer: Layer<B>,
    name: &'static str,
    quant: &WeightQuant,
) -> Result<(QuantizedLinear<B>, ParamBytes), QuantError> {
    let kind = layer.kind_name();
    let Layer::Dense(linear) = layer else {
        return Err(QuantError::NotDense { layer: name, kind });
    };
    let Linear { weight, bias } = linear;
    let [d_input, d_output] = weight.shape().dims();
    let axis = quant
        .block_axis(d_input, d_output)
        .ok_or(QuantError::Shape {
            layer: name,
            dims: [d_input, d_output],
            multiple: quant.axis_multiple(),
        })?;
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
    let bias = bias.map(Param::into_value);
    let bytes = ParamBytes {
        weight: quant.weight_bytes(d_input * d_output),
        bias: bias
            .as_ref()
            .map_or(0, |b| FLOAT_BYTES * b.shape().num_elements()),
    };
    Ok((QuantizedLinear { weight, axis, bias }, bytes))
}

/// One scheme's result on the test images.
#[derive(Debug, Clone)]
pub struct QuantEval {
    /// `f32` for the unquantized model, else [`WeightQuant::name`].
    pub scheme: String,
    /// The quantization, `None` for the unquantized model.
    pub quant: Option<WeightQuant>,
    /// Test accuracy.
    pub accuracy: Accuracy,
    /// Stored bytes.
    pub bytes: ParamBytes,
    /// Bytes of the same classifier with f32 weights (and biases).
    pub dense_bytes: usize,
    /// The blocks' axes of the hidden layer and the head, `None` for the unquantized model.
    pub axes: Option<[BlockAxis; 2]>,
}

/// Why a quantized evaluation failed.
#[derive(Debug)]
pub enum QuantEvalError {
    /// The saved model could not be loaded, or the data could not be read.
    Load(TrainError),
    /// The model could not be quantized.
    Quant(QuantError),
}

impl std::fmt::Display for QuantEvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Load(err) => err.fmt(f),
            Self::Quant(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for QuantEvalError {}

/// Reloads a dense model saved by [`super::run::TrainJob`], evaluates it unquantized and
/// under each scheme on the test images, on the backend it is dispatched to.
pub struct QuantEvalJob {
    /// The saved model (`model.rbe`, with `model.json` beside it).
    pub path: PathBuf,
    /// The schemes, in order; the unquantized model comes first.
    pub schemes: Vec<WeightQuant>,
    /// Evaluate on the first N test images only.
    pub test_limit: Option<usize>,
    /// Where the MNIST files come from.
    pub data_dir: DataDir,
}

impl BackendJob for QuantEvalJob {
    type Output = Result<Vec<QuantEval>, QuantEvalError>;

    fn run<B: RbeBackend>(self, device: B::Device, _kind: BackendKind) -> Self::Output {
        let (model, mut config) =
            training::load::<B>(&self.path, &device).map_err(QuantEvalError::Load)?;
        if config.model.kind != ModelKind::Dense {
            return Err(QuantEvalError::Quant(QuantError::NotDense {
                layer: "hidden",
                kind: model.hidden.kind_name(),
            }));
        }
        if self.test_limit.is_some() {
            config.test_limit = self.test_limit;
        }
        config.validate().map_err(QuantEvalError::Load)?;
        let data = Mnist::load(&self.data_dir)
            .map_err(|err| QuantEvalError::Load(TrainError::Data(err)))?;
        let range = config.test_range();
        let dense_bytes = config.model.dense_bytes();
        let evaluate = |m: &Mlp<B>| {
            training::evaluate(m, data.test(range.start, range.end), EVAL_BATCH, &device)
        };
        let mut results = vec![QuantEval {
            scheme: "f32".into(),
            quant: None,
            accuracy: evaluate(&model),
            bytes: model.bytes(),
            dense_bytes,
            axes: None,
        }];
        for quant in self.schemes {
            let quantized = quantize_mlp(model.clone(), &quant).map_err(QuantEvalError::Quant)?;
            results.push(QuantEval {
                scheme: quant.name(),
                quant: Some(quant),
                accuracy: quantized.evaluate(
                    data.test(range.start, range.end),
                    EVAL_BATCH,
                    &device,
                ),
                bytes: quantized.bytes,
                dense_bytes,
                axes: Some(quantized.axes()),
            });
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::mnist::data::IMAGE_PIXELS;
    use crate::mnist::model::{ModelConfig, NUM_CLASSES};

    /// What a block-wise symmetric quantizer must produce, in f64: for each block of
    /// `block` consecutive entries of `rows` (row-major, blocks along the last axis),
    /// `scale = 2 max|w| / (hi - lo)` and every entry a multiple `q scale` with the integer
    /// `q` in `[lo, hi]` nearest to `w / scale`. Returns the scales.
    fn reference_scales(values: &[f32], block: usize, grid: QuantGrid) -> Vec<f64> {
        let (lo, hi) = grid.value().range();
        values
            .chunks(block)
            .map(|chunk| {
                let alpha = chunk.iter().fold(0.0f64, |m, &w| m.max(f64::from(w).abs()));
                2.0 * alpha / f64::from(hi - lo)
            })
            .collect()
    }

    /// Checks `dequantized` against the reference: the integer `q = dequantized / scale`
    /// is in the grid and is a nearest grid point to `w / scale` (either neighbour at a
    /// tie, where f32 and f64 may round differently).
    fn assert_block_quantized(
        original: &[f32],
        dequantized: &[f32],
        block: usize,
        grid: QuantGrid,
        what: &str,
    ) {
        assert_eq!(original.len(), dequantized.len());
        let (lo, hi) = grid.value().range();
        let (lo, hi) = (f64::from(lo), f64::from(hi));
        let scales = reference_scales(original, block, grid);
        for (i, (&w, &d)) in original.iter().zip(dequantized).enumerate() {
            let scale = scales[i / block];
            assert!(scale > 0.0, "{what}: block {} is all zeros", i / block);
            let q = f64::from(d) / scale;
            assert!(
                (q - q.round()).abs() < 1e-3,
                "{what}, entry {i}: {d} is not a multiple of the block's scale {scale} (q = {q})"
            );
            let q = q.round();
            assert!(
                (lo..=hi).contains(&q),
                "{what}, entry {i}: q = {q} outside [{lo}, {hi}]"
            );
            let target = (f64::from(w) / scale).clamp(lo, hi);
            assert!(
                (q - target).abs() <= 0.5 + 1e-4,
                "{what}, entry {i}: w = {w} rounds to q = {q}, but w / scale = {target}"
            );
        }
    }

    /// A dense classifier with its parameters drawn now: Burn initializes parameters
    /// lazily, and each clone of an uninitialized one would draw its own values.
    fn dense_model<B: Backend>(d_hidden: usize, device: &B::Device) -> Mlp<B> {
        let model = ModelConfig::new(ModelKind::Dense)
            .with_d_hidden(d_hidden)
            .try_init::<B>(device)
            .expect("a valid dense model");
        for layer in [&model.hidden, &model.head] {
            let layer = linear(layer);
            let _ = layer.weight.val();
            let _ = layer.bias.as_ref().map(|b| b.val());
        }
        model
    }

    fn values<B: Backend>(tensor: Tensor<B, 2>) -> Vec<f32> {
        tensor
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 data")
    }

    fn linear<B: Backend>(layer: &Layer<B>) -> &Linear<B> {
        match layer {
            Layer::Dense(linear) => linear,
            other => panic!("expected a dense layer, got {}", other.kind_name()),
        }
    }

    /// Quantizes a small classifier under every grid and checks each weight matrix against
    /// the f64 reference in the orientation its blocks run along, the biases untouched, and
    /// the forward pass against an f64 matmul with the reference-checked weights.
    fn check_backend<B: Backend>(device: &B::Device) {
        B::seed(device, 7);
        // The hidden weight [784, 64] blocks along its output axis (784 = 24.5 blocks of
        // 32); the head [64, 10] along its input axis (10 is no multiple of 32).
        let model = dense_model::<B>(64, device);
        let images = Tensor::<B, 2>::random([5, IMAGE_PIXELS], Distribution::Default, device);
        for grid in [
            QuantGrid::Q4f,
            QuantGrid::Q4s,
            QuantGrid::Q2f,
            QuantGrid::Q2s,
        ] {
            let quant = WeightQuant::new(grid, 32).unwrap();
            let quantized = quantize_mlp(model.clone(), &quant).unwrap();
            assert_eq!(quantized.axes(), [BlockAxis::Output, BlockAxis::Input]);
            let mut dequantized = Vec::new();
            for (name, layer, q) in [
                ("hidden", &model.hidden, &quantized.hidden),
                ("head", &model.head, &quantized.head),
            ] {
                let float = linear(layer);
                let [d_input, d_output] = float.weight.shape().dims();
                // The stored tensor has its blocks along the last axis.
                let w = match q.axis {
                    BlockAxis::Output => float.weight.val(),
                    BlockAxis::Input => float.weight.val().transpose(),
                };
                let stored = q.weight.clone().dequantize();
                assert_eq!(stored.dims(), w.dims(), "{name}");
                let what = format!("{} {name}", quant.name());
                assert_block_quantized(&values(w), &values(stored), 32, grid, &what);
                let deq = q.dequantized_weight();
                assert_eq!(deq.dims(), [d_input, d_output], "{name}");
                let bias = values(float.bias.as_ref().unwrap().val().unsqueeze::<2>());
                assert_eq!(
                    values(q.bias.clone().unwrap().unsqueeze::<2>()),
                    bias,
                    "{name}: biases stay f32"
                );
                dequantized.push((values(deq), bias, d_input, d_output));
            }

            // f64 forward with the dequantized weights.
            let x = values(images.clone());
            let layer =
                |input: &[f64], (w, b, d_in, d_out): &(Vec<f32>, Vec<f32>, usize, usize)| {
                    let rows = input.len() / d_in;
                    let mut out = vec![0.0f64; rows * d_out];
                    for r in 0..rows {
                        for o in 0..*d_out {
                            let dot: f64 = (0..*d_in)
                                .map(|i| input[r * d_in + i] * f64::from(w[i * d_out + o]))
                                .sum();
                            out[r * d_out + o] = dot + f64::from(b[o]);
                        }
                    }
                    out
                };
            let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let hidden: Vec<f64> = layer(&x, &dequantized[0])
                .iter()
                .map(|v| v.max(0.0))
                .collect();
            let expected = layer(&hidden, &dequantized[1]);
            let got = values(quantized.forward(images.clone()));
            assert_eq!(got.len(), 5 * NUM_CLASSES);
            let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (i, (&g, &e)) in got.iter().zip(&expected).enumerate() {
                assert!(
                    (f64::from(g) - e).abs() <= 1e-4 * scale,
                    "{}: logit {i} is {g}, the f64 reference {e}",
                    quant.name()
                );
            }
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn flex_quantizes_every_grid_like_the_f64_reference() {
        check_backend::<burn::backend::Flex<f32, i32>>(&Default::default());
    }

    /// The default WGPU device if an adapter exists; without one the test is skipped
    /// unless `RBE_REQUIRE_WGPU=1`.
    #[cfg(feature = "wgpu")]
    fn wgpu_device() -> Option<burn::backend::wgpu::WgpuDevice> {
        let device = burn::backend::wgpu::WgpuDevice::default();
        let probe = device.clone();
        let found = std::panic::catch_unwind(move || {
            Tensor::<burn::backend::Wgpu, 1>::zeros([1], &probe).into_data();
        })
        .is_ok();
        if found {
            Some(device)
        } else if std::env::var("RBE_REQUIRE_WGPU").as_deref() == Ok("1") {
            panic!("RBE_REQUIRE_WGPU=1 but no WGPU adapter was found");
        } else {
            eprintln!("no WGPU adapter: skipping (set RBE_REQUIRE_WGPU=1 to fail instead)");
            None
        }
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn wgpu_quantizes_every_grid_like_the_f64_reference() {
        if let Some(device) = wgpu_device() {
            check_backend::<burn::backend::Wgpu<f32, i32>>(&device);
        }
    }

    #[test]
    fn bytes_count_packed_values_and_one_f32_scale_per_block() {
        let q4 = WeightQuant::new(QuantGrid::Q4f, 32).unwrap();
        let q2 = WeightQuant::new(QuantGrid::Q2s, 32).unwrap();
        // 784 x 256 hidden weights: 6272 blocks.
        assert_eq!(q4.weight_bytes(784 * 256), 784 * 256 / 2 + 6272 * 4);
        assert_eq!(q2.weight_bytes(784 * 256), 784 * 256 / 4 + 6272 * 4);
        // A partial last block still stores a scale.
        assert_eq!(q4.weight_bytes(33), 17 + 2 * 4);
        assert_eq!(q4.axis_multiple(), 32);
        assert_eq!(
            WeightQuant::new(QuantGrid::Q2f, 8).unwrap().axis_multiple(),
            16
        );
        assert_eq!(q4.block_axis(784, 256), Some(BlockAxis::Output));
        assert_eq!(q4.block_axis(256, 10), Some(BlockAxis::Input));
        assert_eq!(q4.block_axis(784, 10), None);
    }

    #[cfg(feature = "flex")]
    #[test]
    fn the_mnist_model_s_bytes_are_counted_like_the_table_s() {
        type B = burn::backend::Flex<f32, i32>;
        let device = Default::default();
        let model = dense_model::<B>(256, &device);
        let q4 = quantize_mlp(
            model.clone(),
            &WeightQuant::new(QuantGrid::Q4f, 32).unwrap(),
        );
        let q4 = q4.unwrap();
        // Hidden 784x256 along outputs: 100352 + 6272 scales; head 256x10 along inputs:
        // 1280 + 80 scales. Biases 256 + 10 f32, as `Mlp::bytes` counts them.
        assert_eq!(q4.bytes.weight, 100_352 + 6272 * 4 + 1280 + 80 * 4);
        assert_eq!(q4.bytes.bias, model.bytes().bias);
        assert_eq!(q4.bytes.bias, 4 * (256 + 10));
    }

    #[cfg(feature = "flex")]
    #[test]
    fn bad_inputs_are_errors_not_panics() {
        type B = burn::backend::Flex<f32, i32>;
        let device = Default::default();
        assert_eq!(
            WeightQuant::new(QuantGrid::Q4f, 256),
            Err(QuantError::BlockSize(256))
        );
        assert_eq!(
            WeightQuant::new(QuantGrid::Q4f, 0),
            Err(QuantError::BlockSize(0))
        );
        // 784 x 20: neither side is a multiple of 32.
        let odd = dense_model::<B>(20, &device);
        let err = quantize_mlp(odd, &WeightQuant::new(QuantGrid::Q4f, 32).unwrap()).unwrap_err();
        assert_eq!(
            err,
            QuantError::Shape {
                layer: "hidden",
                dims: [784, 20],
                multiple: 32
            }
        );
        let rbe = ModelConfig::new(ModelKind::Lowrank)
            .try_init::<B>(&device)
            .unwrap();
        let err = quantize_mlp(rbe, &WeightQuant::new(QuantGrid::Q4f, 16).unwrap()).unwrap_err();
        assert_eq!(
            err,
            QuantError::NotDense {
                layer: "hidden",
                kind: "LowRank"
            }
        );
    }
}
