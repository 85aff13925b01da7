//! Burn's own post-training quantization of a trained dense classifier: the baseline a
//! compressed model has to beat at the same bytes.
//!
//! Each weight matrix is quantized block-wise with Burn's [`Quantizer`](burn::module::Quantizer) (min-max
//! calibration, symmetric scale per block, the grid of a [`QuantValue`](burn::tensor::quantization::QuantValue), scales stored as
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
use burn::nn::Relu;
use burn::prelude::*;
use rbe_burn::RbeBackend;

use super::data::{DataDir, Mnist, MnistBatcher, MnistSlice};
use super::model::{Mlp, ModelKind};
use super::training::{self, Accuracy, TrainError};
use crate::backend::{BackendJob, BackendKind};
use crate::layer::{FLOAT_BYTES, Layer, ParamBytes};
pub use crate::quantized_linear::{
    BlockAxis, QuantError, QuantGrid, QuantizedLinear, SCALE_BYTES, WeightQuant,
};

/// Images per evaluation batch (no gradients are kept).
const EVAL_BATCH: usize = 500;

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

/// Quantizes the weight matrices of a dense classifier with Burn's [`Quantizer`](burn::module::Quantizer); biases
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
    let [d_input, d_output] = linear.weight.shape().dims();
    let axis = quant
        .block_axis(d_input, d_output)
        .ok_or(QuantError::Shape {
            layer: name,
            dims: [d_input, d_output],
            multiple: quant.axis_multiple(),
        })?;
    let bytes = ParamBytes {
        weight: quant.weight_bytes(d_input * d_output),
        bias: linear
            .bias
            .as_ref()
            .map_or(0, |b| FLOAT_BYTES * b.shape().num_elements()),
    };
    Ok((QuantizedLinear::quantize(linear, quant, axis), bytes))
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
    use burn::nn::Linear;
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
