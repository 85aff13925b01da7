//! The 784-256-10 ReLU classifier, with dense, RBE or low-rank layers.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{LinearConfig, Relu};
use burn::prelude::*;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use rbe_burn::RbeAutodiffBackend;
use rbe_burn::{
    BitTraining, Compressor, PaperFormat, RbeBackend, RbeError, RbeLinearConfig, SeedFormat,
    SignFormat, TernaryFormat,
};
use serde::{Deserialize, Serialize};

use super::data::{IMAGE_PIXELS, MnistBatch};
use crate::layer::{FLOAT_BYTES, Layer, ParamBytes};
use crate::low_rank::LowRankLinearConfig;

/// Which layers the classifier is made of.
#[derive(Config, Debug, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelKind {
    /// Two burn `Linear` layers: the reference.
    Dense,
    /// Two `RbeLinear` layers (or an RBE hidden layer and a dense head).
    Rbe,
    /// Two rank-`k` `U Vᵀ` layers: the equal-budget baseline.
    Lowrank,
}

impl ModelKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dense => "dense",
            Self::Rbe => "rbe",
            Self::Lowrank => "lowrank",
        }
    }
}

/// Everything needed to rebuild the classifier before loading a saved record (the block grid
/// of an RBE layer is configuration, not state).
#[derive(Config, Debug)]
pub struct ModelConfig {
    /// The kind of layers.
    pub kind: ModelKind,
    /// Hidden width.
    #[config(default = 256)]
    pub d_hidden: usize,
    /// Side of the RBE blocks.
    #[config(default = 8)]
    pub block_size: usize,
    /// Rank of the dense residual of each RBE layer; 0 is pure RBE.
    #[config(default = 0)]
    pub residual_rank: usize,
    /// Rank `k` of the low-rank layers (capped at each layer's smaller side).
    #[config(default = 16)]
    pub rank: usize,
    /// Keep the 10-way head a dense `Linear` (RBE and low-rank only).
    #[config(default = false)]
    pub dense_head: bool,
    /// The paper's state transitions on the RBE layers (for the sign blueprint: whether the
    /// bits learn at all).
    #[config(default = true)]
    pub transitions: bool,
    /// What the RBE seeds' bits mean: the paper's format or the sign blueprint.
    #[config(default = "RbeFormat::Paper")]
    pub format: RbeFormat,
    /// How sign-blueprint bits learn: straight-through latent weights or Bop flips.
    #[config(default = "BitTraining::StraightThrough")]
    pub bit_training: BitTraining,
    /// Train the head only, keeping the hidden layer at its random initialisation: the
    /// random-features control that shows what the hidden layer's own learning adds.
    #[config(default = false)]
    pub freeze_hidden: bool,
}

/// Which seed format the RBE layers use. The library's [`SeedFormat`] carries each format's
/// settings; this config sets them from its own fields (`transitions`, `bit_training`), so it
/// names only the format (and stores it as configs saved before formats had settings did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RbeFormat {
    /// The paper's CORDIC seed.
    #[default]
    Paper,
    /// The sign blueprint.
    SignBlueprint,
    /// Ternary levels with an f16 scale per block.
    Ternary,
}

impl RbeFormat {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::SignBlueprint => "sign",
            Self::Ternary => "ternary",
        }
    }
}

/// Number of classes.
pub const NUM_CLASSES: usize = 10;

/// Why a model could not be built.
#[derive(Debug)]
pub enum ModelError {
    /// An RBE layer rejected its configuration.
    Rbe(RbeError),
    /// Another field is out of range.
    Config(String),
    /// A layer that has to be a dense `Linear` (to be compressed) is another kind.
    NotDense {
        /// `hidden` or `head`.
        layer: &'static str,
        /// The kind it is (`Rbe`, `LowRank`).
        kind: &'static str,
    },
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rbe(err) => write!(f, "invalid RBE layer: {err}"),
            Self::Config(msg) => write!(f, "invalid model: {msg}"),
            Self::NotDense { layer, kind } => write!(
                f,
                "the {layer} layer is {kind}, not a dense Linear: only a dense model can be \
                 compressed"
            ),
        }
    }
}

impl std::error::Error for ModelError {}

impl ModelConfig {
    /// Builds the classifier, or says why the configuration is invalid.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<Mlp<B>, ModelError> {
        if self.d_hidden == 0 {
            return Err(ModelError::Config("d_hidden must be >= 1".into()));
        }
        if self.kind == ModelKind::Lowrank && self.rank == 0 {
            return Err(ModelError::Config("--rank must be >= 1".into()));
        }
        let mut hidden = self.layer(IMAGE_PIXELS, self.d_hidden, false, device)?;
        if self.freeze_hidden {
            hidden = hidden.no_grad();
        }
        Ok(Mlp {
            hidden,
            head: self.layer(self.d_hidden, NUM_CLASSES, true, device)?,
            activation: Relu::new(),
        })
    }

    /// How a bit format's bits train; `bits_learn` off freezes them.
    fn bits(&self, bits_learn: bool) -> BitTraining {
        if bits_learn {
            self.bit_training
        } else {
            BitTraining::Frozen
        }
    }

    /// The layers' seed format with its settings; `bits_learn` off freezes the bits.
    fn seed_format(&self, bits_learn: bool) -> SeedFormat {
        match self.format {
            RbeFormat::Paper => PaperFormat::new()
                .with_transitions_enabled(bits_learn)
                .into(),
            RbeFormat::SignBlueprint => SignFormat::new(self.bits(bits_learn)).into(),
            RbeFormat::Ternary => TernaryFormat::new(self.bits(bits_learn)).into(),
        }
    }

    fn layer<B: Backend>(
        &self,
        d_input: usize,
        d_output: usize,
        is_head: bool,
        device: &B::Device,
    ) -> Result<Layer<B>, ModelError> {
        let kind = if is_head && self.dense_head {
            ModelKind::Dense
        } else {
            self.kind
        };
        Ok(match kind {
            ModelKind::Dense => Layer::Dense(LinearConfig::new(d_input, d_output).init(device)),
            ModelKind::Rbe => Layer::Rbe(
                // Transitions move the bits without gradients: a frozen layer has none.
                self.rbe_layer(
                    d_input,
                    d_output,
                    self.transitions && (is_head || !self.freeze_hidden),
                )
                .try_init(device)
                .map_err(ModelError::Rbe)?,
            ),
            ModelKind::Lowrank => Layer::LowRank(
                LowRankLinearConfig::new(d_input, d_output, self.low_rank(d_input, d_output))
                    .init(device),
            ),
        })
    }

    /// The configuration of an RBE layer of this model; `bits_learn` off freezes its bits.
    fn rbe_layer(&self, d_input: usize, d_output: usize, bits_learn: bool) -> RbeLinearConfig {
        RbeLinearConfig::new(d_input, d_output)
            .with_block_size(self.block_size)
            .with_residual_rank(self.residual_rank)
            .with_format(self.seed_format(bits_learn))
    }

    /// A compressor that encodes dense layers into the RBE layers this configuration builds
    /// (block size, residual rank, format and its settings), so that an encoded model
    /// reloads through [`ModelConfig::try_init`] like one trained from scratch.
    pub fn compressor(&self) -> Compressor {
        // The template's shape is ignored: each layer's comes from the layer encoded.
        let mut template = self.rbe_layer(0, 0, self.transitions);
        if let SeedFormat::Paper(paper) = template.format {
            template.format = paper.for_trained_weights().into();
        }
        Compressor::new(&template)
    }

    /// The rank a low-rank layer of this shape gets: beyond the smaller side `U Vᵀ` cannot
    /// gain expressiveness, only bytes.
    pub fn low_rank(&self, d_input: usize, d_output: usize) -> usize {
        self.rank.min(d_input).min(d_output)
    }

    /// Bytes of the all-dense classifier with this hidden width, biases included.
    pub fn dense_bytes(&self) -> usize {
        let linear = |d_in: usize, d_out: usize| FLOAT_BYTES * (d_in * d_out + d_out);
        linear(IMAGE_PIXELS, self.d_hidden) + linear(self.d_hidden, NUM_CLASSES)
    }
}

/// `head(relu(hidden(x)))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// 784 -> 256.
    pub hidden: Layer<B>,
    /// 256 -> 10.
    pub head: Layer<B>,
    /// ReLU between the two.
    pub activation: Relu,
}

impl<B: Backend> Mlp<B> {
    /// Stored bytes of both layers.
    pub fn bytes(&self) -> ParamBytes {
        self.hidden.bytes() + self.head.bytes()
    }

    /// Encodes a dense model's layers into RBE layers with `compressor`'s settings: both, or
    /// the hidden layer only when `dense_head` keeps the head dense. Each layer's encode
    /// report is recorded in `compressor` under `hidden` and `head`.
    ///
    /// # Errors
    /// [`ModelError::NotDense`] when a layer to encode is not dense (nothing is encoded
    /// then), [`ModelError::Rbe`] with the layer's name when its encode fails.
    pub fn compress(
        self,
        compressor: &mut Compressor,
        dense_head: bool,
    ) -> Result<Mlp<B>, ModelError> {
        let hidden = dense_linear("hidden", &self.hidden)?;
        let head = (!dense_head)
            .then(|| dense_linear("head", &self.head))
            .transpose()?;
        let hidden = Layer::Rbe(
            compressor
                .linear("hidden", hidden)
                .map_err(ModelError::Rbe)?,
        );
        let head = match head {
            Some(head) => Layer::Rbe(compressor.linear("head", head).map_err(ModelError::Rbe)?),
            None => self.head,
        };
        Ok(Mlp {
            hidden,
            head,
            activation: self.activation,
        })
    }
}

/// The `Linear` inside a dense layer, or which kind the layer is instead.
pub fn dense_linear<'a, B: Backend>(
    name: &'static str,
    layer: &'a Layer<B>,
) -> Result<&'a burn::nn::Linear<B>, ModelError> {
    match layer {
        Layer::Dense(linear) => Ok(linear),
        other => Err(ModelError::NotDense {
            layer: name,
            kind: other.kind_name(),
        }),
    }
}

impl<B: RbeBackend> Mlp<B> {
    /// Class logits.
    ///
    /// # Shapes
    /// - images: `[batch, 784]`
    /// - output: `[batch, 10]`
    pub fn forward(&self, images: Tensor<B, 2>) -> Tensor<B, 2> {
        let hidden = self.activation.forward(self.hidden.forward(images));
        self.head.forward(hidden)
    }

    /// Logits and the mean cross-entropy against `targets`.
    ///
    /// # Shapes
    /// - images: `[batch, 784]`
    /// - targets: `[batch]`
    pub fn forward_classification(
        &self,
        images: Tensor<B, 2>,
        targets: Tensor<B, 1, Int>,
    ) -> ClassificationOutput<B> {
        let output = self.forward(images);
        let loss = CrossEntropyLossConfig::new()
            .init(&output.device())
            .forward(output.clone(), targets.clone());
        ClassificationOutput::new(loss, output, targets)
    }
}

impl<B: RbeAutodiffBackend> TrainStep for Mlp<B> {
    type Input = MnistBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: MnistBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let item = self.forward_classification(batch.images, batch.targets);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl<B: RbeBackend> InferenceStep for Mlp<B> {
    type Input = MnistBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: MnistBatch<B>) -> ClassificationOutput<B> {
        self.forward_classification(batch.images, batch.targets)
    }
}
