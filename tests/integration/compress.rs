//! Compressing a whole trained model with `Compressor`, on the model of Burn's guide (two
//! convolutions, adaptive pooling, dropout, two `Linear`s): the convolutions and the output
//! layer are kept, the hidden `Linear` becomes an `RbeLinear`. The compressed model must
//! compute what its parts say, report per-layer and per-model encode figures that agree with
//! the weights, survive every recorder a Burn user reaches for, and refuse bad weights and
//! bad block shapes with typed errors that name the layer.

use burn::backend::Flex;
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;
use burn::record::{
    BinFileRecorder, CompactRecorder, DefaultRecorder, FileRecorder, FullPrecisionSettings,
    PrettyJsonFileRecorder,
};
use burn::tensor::f16;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rbe::{
    BitTraining, CompressionReport, Compressor, RbeBackend, RbeError, RbeLinear, RbeLinearConfig,
    RbeRecorder, SignFormat, load_checked,
};

use crate::scratch::Scratch;

type B = Flex;

const HIDDEN: usize = 32;
const CLASSES: usize = 10;
const BATCH: usize = 3;

/// The guide's model, at a size a test can run.
#[derive(Module, Debug)]
struct Model<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    pool: AdaptiveAvgPool2d,
    dropout: Dropout,
    linear1: Linear<B>,
    linear2: Linear<B>,
    activation: Relu,
}

/// Its compressed twin: the same fields, with `linear1` an `RbeLinear`.
#[derive(Module, Debug)]
struct CompressedModel<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    pool: AdaptiveAvgPool2d,
    dropout: Dropout,
    linear1: RbeLinear<B>,
    linear2: Linear<B>,
    activation: Relu,
}

fn model(device: &burn::tensor::Device<B>) -> Model<B> {
    Model {
        conv1: Conv2dConfig::new([1, 4], [3, 3]).init(device),
        conv2: Conv2dConfig::new([4, 8], [3, 3]).init(device),
        pool: AdaptiveAvgPool2dConfig::new([4, 4]).init(),
        dropout: DropoutConfig::new(0.5).init(),
        linear1: LinearConfig::new(8 * 4 * 4, HIDDEN).init(device),
        linear2: LinearConfig::new(HIDDEN, CLASSES).init(device),
        activation: Relu::new(),
    }
}

impl<B: Backend> Model<B> {
    /// The README's pattern: move what stays, encode what is compressed.
    fn compress(self, compressor: &mut Compressor) -> Result<CompressedModel<B>, RbeError> {
        Ok(CompressedModel {
            linear1: compressor.linear("linear1", &self.linear1)?,
            conv1: self.conv1,
            conv2: self.conv2,
            pool: self.pool,
            dropout: self.dropout,
            linear2: self.linear2,
            activation: self.activation,
        })
    }

    /// # Shapes
    /// - `images`: `[batch, height, width]`; returns `[batch, CLASSES]`
    fn forward(&self, images: Tensor<B, 3>) -> Tensor<B, 2> {
        let x = features(
            &self.conv1,
            &self.conv2,
            &self.pool,
            &self.activation,
            images,
        );
        let x = self.activation.forward(self.linear1.forward(x));
        self.linear2.forward(self.dropout.forward(x))
    }
}

impl<B: RbeBackend> CompressedModel<B> {
    /// # Shapes
    /// - `images`: `[batch, height, width]`; returns `[batch, CLASSES]`
    fn forward(&self, images: Tensor<B, 3>) -> Tensor<B, 2> {
        let x = features(
            &self.conv1,
            &self.conv2,
            &self.pool,
            &self.activation,
            images,
        );
        let x = self.activation.forward(self.linear1.forward(x));
        self.linear2.forward(self.dropout.forward(x))
    }
}

/// The convolutional part both models share, flattened to `[batch, 8 * 4 * 4]`.
fn features<B: Backend>(
    conv1: &Conv2d<B>,
    conv2: &Conv2d<B>,
    pool: &AdaptiveAvgPool2d,
    activation: &Relu,
    images: Tensor<B, 3>,
) -> Tensor<B, 2> {
    let [batch, height, width] = images.dims();
    let x = images.reshape([batch, 1, height, width]);
    let x = activation.forward(conv2.forward(conv1.forward(x)));
    pool.forward(x).reshape([batch, 8 * 4 * 4])
}

fn images(seed: u64) -> Tensor<B, 3> {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..BATCH * 12 * 12)
        .map(|_| rng.random_range(0.0f32..1.0))
        .collect();
    Tensor::from_data(
        TensorData::new(values, [BATCH, 12, 12]),
        &Default::default(),
    )
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

/// Every float parameter, in visiting order.
struct Floats(Vec<Vec<f32>>);

impl<B: Backend> ModuleVisitor<B> for Floats {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0
            .push(param.val().into_data().convert::<f32>().to_vec().unwrap());
    }
}

fn floats<M: Module<B>>(module: &M) -> Vec<Vec<f32>> {
    let mut visitor = Floats(Vec::new());
    module.visit(&mut visitor);
    visitor.0
}

fn compressed(template: &RbeLinearConfig) -> (Model<B>, CompressedModel<B>, CompressionReport) {
    let device = Default::default();
    B::seed(&device, 5);
    let dense = model(&device);
    // Burn initialises parameters lazily and a clone of an uninitialised one draws its own
    // values (Burn 0.21's `Param::clone`): read them all so the clone is the same model.
    floats(&dense);
    let mut compressor = Compressor::new(template);
    let small = dense.clone().compress(&mut compressor).unwrap();
    (dense, small, compressor.into_report())
}

#[test]
fn the_compressed_model_keeps_the_other_layers_and_reports_the_encode() {
    let template = RbeLinearConfig::new(0, 0)
        .with_block_size(8)
        .with_residual_rank(2);
    let (dense, small, report) = compressed(&template);

    // The kept layers are the dense model's own.
    for (name, a, b) in [
        ("conv1", floats(&dense.conv1), floats(&small.conv1)),
        ("conv2", floats(&dense.conv2), floats(&small.conv2)),
        ("linear2", floats(&dense.linear2), floats(&small.linear2)),
    ] {
        assert_eq!(a, b, "{name} is moved across unchanged");
    }

    // The report is the layer's: its error against the dense weight, its bytes.
    assert_eq!(report.layers.len(), 1);
    let layer = &report.layers[0];
    assert_eq!(layer.name, "linear1");
    let w = values(dense.linear1.weight.val());
    // `Linear` stores `[d_input, d_output]`; `RbeLinear::weight` is `[d_output, d_input]`.
    let got = values(small.linear1.weight().transpose());
    let norm = w.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    let err = w
        .iter()
        .zip(&got)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum::<f64>()
        .sqrt()
        / norm;
    assert!(
        (err - layer.report.rel_frobenius_error).abs() < 1e-5,
        "reported error {} against measured {err}",
        layer.report.rel_frobenius_error
    );
    assert!((layer.weight_norm - norm).abs() < 1e-4 * norm);
    assert!((report.rel_frobenius_error() - err).abs() < 1e-5);
    assert_eq!(report.stored_bytes(), small.linear1.storage_bytes());
    assert_eq!(report.dense_bytes(), 4 * (128 * HIDDEN + HIDDEN));
    assert!(report.compression() > 1.0);

    // The forward is the convolutions, then the encoded weight: same as the dense model with
    // linear1's weight replaced by what the seeds and residual generate.
    let mut swapped = dense.clone();
    swapped.linear1.weight = Param::from_tensor(small.linear1.weight().transpose());
    let want = values(swapped.forward(images(1)));
    let have = values(small.forward(images(1)));
    for (i, (a, b)) in want.iter().zip(&have).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + a.abs()),
            "output {i}: {a} vs {b}"
        );
    }
}

#[test]
fn a_full_rank_residual_reproduces_the_dense_model() {
    let template = RbeLinearConfig::new(0, 0)
        .with_block_size(8)
        .with_residual_rank(HIDDEN);
    let (dense, small, report) = compressed(&template);
    assert!(report.rel_frobenius_error() < 1e-5, "{report:?}");
    let want = values(dense.forward(images(2)));
    let have = values(small.forward(images(2)));
    for (a, b) in want.iter().zip(&have) {
        assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

/// Saves the compressed model with `recorder` and loads it into a compressed model built
/// from another dense model with `load_checked`: seeds bit for bit, every other float as
/// stored (f16 rounding for the half-precision recorders, which keep seeds exact).
fn round_trip<R: FileRecorder<B>>(recorder: R, name: &str, full: bool) {
    let device = Default::default();
    let template = RbeLinearConfig::new(0, 0)
        .with_block_size(8)
        .with_residual_rank(3);
    let (_, small, _) = compressed(&template);
    let seeds = small.linear1.seeds_packed().unwrap();
    let coords = values(small.linear1.seeds.coords());
    let saved = floats(&small);
    let want = values(small.forward(images(3)));
    let scratch = Scratch::new(&format!("compress-{name}"));
    let path = scratch.path("model");
    small.save_file(&path, &recorder).unwrap();

    B::seed(&device, 99);
    let other = model(&device)
        .compress(&mut Compressor::new(&template))
        .unwrap();
    assert_ne!(other.linear1.seeds_packed().unwrap(), seeds);
    let loaded = load_checked(other, &path, &recorder, &device).unwrap();
    assert_eq!(
        loaded.linear1.seeds_packed().unwrap(),
        seeds,
        "{name}: seeds"
    );
    let got = floats(&loaded);
    assert_eq!(got.len(), saved.len());
    for (k, (s, g)) in saved.iter().zip(&got).enumerate() {
        // The seeds' floats are stored exactly under every precision setting.
        let expect: Vec<f32> = if full || s == &coords {
            s.clone()
        } else {
            s.iter().map(|&x| f16::from_f32(x).to_f32()).collect()
        };
        assert_eq!(g, &expect, "{name}: float parameter {k}");
    }
    if full {
        assert_eq!(values(loaded.forward(images(3))), want, "{name}: output");
    }
}

#[test]
fn the_compressed_model_round_trips_through_every_recorder() {
    round_trip(DefaultRecorder::new(), "default", true);
    round_trip(CompactRecorder::new(), "compact", false);
    round_trip(BinFileRecorder::<FullPrecisionSettings>::new(), "bin", true);
    round_trip(
        PrettyJsonFileRecorder::<FullPrecisionSettings>::new(),
        "json",
        true,
    );
    round_trip(RbeRecorder::<FullPrecisionSettings>::new(), "rbe", true);
}

#[test]
fn a_non_finite_weight_is_a_typed_error_naming_the_layer() {
    let device = Default::default();
    let mut dense = model(&device);
    let mut w = values(dense.linear1.weight.val());
    w[7] = f32::NAN;
    dense.linear1.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(w, [128, HIDDEN]),
        &device,
    ));
    let mut compressor = Compressor::new(&RbeLinearConfig::new(0, 0).with_block_size(8));
    match dense.compress(&mut compressor) {
        Err(RbeError::Layer { name, source }) => {
            assert_eq!(name, "linear1");
            assert!(matches!(*source, RbeError::NonFinite(_)), "{source}");
        }
        other => panic!("expected a layer error, got {:?}", other.map(|_| ())),
    }
    assert!(compressor.report().layers.is_empty(), "nothing recorded");
}

#[test]
fn a_block_the_format_cannot_take_is_a_typed_error_naming_the_layer() {
    let device = Default::default();
    // 16 x 16 = 256 cells: more than the sign blueprint's 64 bits.
    let template = RbeLinearConfig::new(0, 0)
        .with_block_size(16)
        .with_format(SignFormat::new(BitTraining::StraightThrough).into());
    let err = model(&device)
        .compress(&mut Compressor::new(&template))
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&err, RbeError::Layer { name, .. } if name == "linear1"),
        "{err}"
    );
}

/// A model compressed on a backend without autodiff (where a trained model is usually loaded)
/// and moved onto one with `from_inner` must train: every float of the encoded layer gets a
/// gradient, so an optimizer moves it.
#[test]
fn a_model_compressed_without_autodiff_trains_after_from_inner() {
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    type T = Autodiff<B>;

    let template = RbeLinearConfig::new(0, 0)
        .with_block_size(8)
        .with_residual_rank(2);
    // No clone of the dense model: Burn 0.21's `Param::clone` of an initialised parameter
    // on a backend without autodiff drops its gradient mark (it re-reads it from the
    // tensor), which would freeze the kept convolutions whatever this crate does.
    let device = Default::default();
    B::seed(&device, 6);
    let small = model(&device)
        .compress(&mut Compressor::new(&template))
        .unwrap();
    let small = <CompressedModel<T> as AutodiffModule<T>>::from_inner(small);
    let images = Tensor::<T, 3>::from_inner(images(4));
    let loss = small.forward(images).powi_scalar(2).mean();
    let grads = loss.backward();
    let linear1 = &small.linear1;
    let residual = linear1.residual.as_ref().expect("rank 2 residual");
    fn norm<const D: usize>(grad: Option<Tensor<B, D>>) -> Option<f32> {
        grad.map(|g| g.abs().sum().into_scalar())
    }
    for (what, norm) in [
        ("seeds", norm(linear1.seeds.coords().grad(&grads))),
        ("residual U", norm(residual.u.val().grad(&grads))),
        ("residual V", norm(residual.v.val().grad(&grads))),
        (
            "bias",
            norm(linear1.bias.as_ref().expect("bias").val().grad(&grads)),
        ),
        ("conv1", norm(small.conv1.weight.val().grad(&grads))),
    ] {
        let norm = norm.unwrap_or_else(|| panic!("{what}: no gradient after from_inner"));
        assert!(norm > 0.0, "{what}: zero gradient");
    }
}
