//! Compressing a whole trained model: [`Compressor`] encodes each chosen dense `Linear` by
//! [`RbeLinear::from_linear`] with one set of settings and keeps every layer's
//! [`EncodeReport`], summed per model in a [`CompressionReport`].
//!
//! Burn has no generic way to change a module's field type (`Linear` to `RbeLinear`), so a
//! model gets a compressed twin struct whose chosen fields are `RbeLinear`, and one function
//! that moves the other fields across and sends each chosen `Linear` through
//! [`Compressor::linear`] (README, "Compressing a trained model").

use burn::nn::Linear;
use burn::tensor::ElementConversion;
use burn::tensor::backend::Backend;

use super::{BlockShape, EncodeReport, RbeLinear, RbeLinearConfig};
use crate::RbeError;
use crate::formats::{RbeInitializer, SeedFormat};

/// Encodes the dense layers of a trained model, one call per layer, with the block shape,
/// residual rank, format and initializer of a template configuration; each layer's shape
/// and bias come from the layer itself.
///
/// ```
/// use burn::backend::Flex;
/// use burn::nn::LinearConfig;
/// use rbe_burn::{Compressor, PaperFormat, RbeLinearConfig};
///
/// let device = Default::default();
/// let hidden = LinearConfig::new(64, 32).init::<Flex>(&device);
/// let head = LinearConfig::new(32, 10).init::<Flex>(&device);
///
/// // The paper format's floor on `r` is for training from scratch; trained weights are
/// // smaller (`PaperFormat::for_trained_weights`).
/// let template = RbeLinearConfig::new(0, 0)
///     .with_block_size(8)
///     .with_format(PaperFormat::new().for_trained_weights().into());
/// let mut compressor = Compressor::new(&template);
/// let hidden = compressor.linear("hidden", &hidden).unwrap();
/// let head = compressor.linear("head", &head).unwrap();
/// let report = compressor.into_report();
/// assert_eq!(report.layers.len(), 2);
/// assert!(report.compression() > 10.0);
/// assert!(report.rel_frobenius_error() < 1.0);
/// # let _ = (hidden, head);
/// ```
#[derive(Debug, Clone)]
pub struct Compressor {
    block: BlockShape,
    residual_rank: usize,
    format: SeedFormat,
    initializer: RbeInitializer,
    report: CompressionReport,
}

impl Compressor {
    /// A compressor with the block shape, residual rank, format and initializer of
    /// `template`; its `d_input`, `d_output` and `bias` are ignored.
    pub fn new(template: &RbeLinearConfig) -> Self {
        Self {
            block: template.block,
            residual_rank: template.residual_rank,
            format: template.format,
            initializer: template.initializer.clone(),
            report: CompressionReport::default(),
        }
    }

    /// The configuration a dense `linear` is encoded with.
    pub fn config_for<B: Backend>(&self, linear: &Linear<B>) -> RbeLinearConfig {
        let [d_input, d_output] = linear.weight.dims();
        RbeLinearConfig::new(d_input, d_output)
            .with_bias(linear.bias.is_some())
            .with_block(self.block)
            .with_residual_rank(self.residual_rank)
            .with_format(self.format)
            .with_initializer(self.initializer.clone())
    }

    /// Encodes `linear` ([`RbeLinear::from_linear`]) and records its report under `name`.
    ///
    /// # Errors
    /// [`RbeError::Layer`] naming the layer, around what `from_linear` returned: a weight
    /// holding NaN or infinity, a block shape the format cannot take, a residual rank above
    /// the layer's smaller side. Nothing is recorded for a layer that failed.
    pub fn linear<B: Backend>(
        &mut self,
        name: impl Into<String>,
        linear: &Linear<B>,
    ) -> Result<RbeLinear<B>, RbeError> {
        let name = name.into();
        let config = self.config_for(linear);
        let layer_error = |source| RbeError::Layer {
            name: name.clone(),
            source: Box::new(source),
        };
        let (layer, report) = RbeLinear::from_linear(linear, &config).map_err(layer_error)?;
        let weight_norm = linear
            .weight
            .val()
            .powi_scalar(2)
            .sum()
            .into_scalar()
            .elem::<f64>()
            .sqrt();
        self.report.layers.push(LayerEncode {
            name,
            report,
            weight_norm,
        });
        Ok(layer)
    }

    /// What has been encoded so far.
    pub fn report(&self) -> &CompressionReport {
        &self.report
    }

    /// The reports of every encoded layer.
    pub fn into_report(self) -> CompressionReport {
        self.report
    }
}

/// One layer's encode, as [`Compressor::linear`] recorded it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerEncode {
    /// The name the layer was given.
    pub name: String,
    /// What [`RbeLinear::from_linear`] reported.
    pub report: EncodeReport,
    /// `||W||_F` of the dense weight, which weighs this layer in the model's error.
    pub weight_norm: f64,
}

/// The encode reports of a model's compressed layers, and their sums.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompressionReport {
    /// One entry per compressed layer, in the order they were encoded.
    pub layers: Vec<LayerEncode>,
}

impl CompressionReport {
    /// `sqrt(sum ||W_l - W_l'||²) / sqrt(sum ||W_l||²)` over the compressed layers: the
    /// relative Frobenius error of all their weights taken as one vector (0 when empty).
    pub fn rel_frobenius_error(&self) -> f64 {
        let (err, norm) = self.layers.iter().fold((0.0, 0.0), |(e, n), l| {
            let abs = l.report.rel_frobenius_error * l.weight_norm;
            (e + abs * abs, n + l.weight_norm * l.weight_norm)
        });
        if norm > 0.0 { (err / norm).sqrt() } else { 0.0 }
    }

    /// The layer with the largest relative error, the one to look at first.
    pub fn worst(&self) -> Option<&LayerEncode> {
        self.layers.iter().max_by(|a, b| {
            a.report
                .rel_frobenius_error
                .total_cmp(&b.report.rel_frobenius_error)
        })
    }

    /// Bytes the compressed layers store (seeds, residuals, biases).
    pub fn stored_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.report.storage.total_bytes)
            .sum()
    }

    /// Bytes the same layers store as dense `Linear`s.
    pub fn dense_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.report.storage.dense_bytes)
            .sum()
    }

    /// `dense_bytes / stored_bytes` of the compressed layers (0 when empty).
    pub fn compression(&self) -> f64 {
        match self.stored_bytes() {
            0 => 0.0,
            stored => self.dense_bytes() as f64 / stored as f64,
        }
    }
}
