//! [`RbeLinearConfig`]: the drop-in counterpart of Burn's `LinearConfig`.

use burn::config::Config;
use burn::module::{Initializer, Param};
use burn::tensor::backend::Backend;
use rbe_kernels::{BlockLayout, Packed128};

use super::{LowRankResidual, RbeLinear, RbeSeeds};
use crate::RbeError;
use crate::formats::{RbeInitializer, SeedFormat};
use crate::trainable_param;

/// The shape of the blocks one seed generates: `rows x cols` cells of the
/// `[d_output, d_input]` weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BlockShape {
    /// Rows per block (output features).
    pub rows: usize,
    /// Columns per block (input features).
    pub cols: usize,
}

impl BlockShape {
    /// A square `side x side` block.
    pub fn square(side: usize) -> Self {
        Self {
            rows: side,
            cols: side,
        }
    }

    /// A `rows x cols` block.
    pub fn new(rows: usize, cols: usize) -> Self {
        Self { rows, cols }
    }
}

/// Configuration of an [`RbeLinear`] layer; swap it in for `LinearConfig`.
///
/// ```
/// use rbe_burn::{BitTraining, RbeLinearConfig, SeedFormat, SignFormat};
/// let config = RbeLinearConfig::new(784, 256).with_block_size(8).with_residual_rank(4);
/// assert_eq!(config.layout().unwrap().num_blocks(), 98 * 32);
///
/// // What the seeds mean, and that format's settings, is one value.
/// let sign = config
///     .with_residual_rank(0)
///     .with_format(SeedFormat::SignBlueprint(SignFormat::new(BitTraining::Flip)));
/// assert!(sign.validate().is_ok());
/// assert!(sign.with_block_size(16).validate().is_err()); // 256 cells > 64 sign bits
/// ```
#[derive(Config, Debug)]
pub struct RbeLinearConfig {
    /// Input features.
    pub d_input: usize,
    /// Output features.
    pub d_output: usize,
    /// Whether to add a bias, as in `LinearConfig`.
    #[config(default = true)]
    pub bias: bool,
    /// The blocks one seed generates ([`RbeLinearConfig::with_block_size`] for square ones).
    #[config(default = "BlockShape::square(32)")]
    pub block: BlockShape,
    /// Rank of the dense residual `U V`; 0 is pure RBE, as in the paper.
    #[config(default = 0)]
    pub residual_rank: usize,
    /// What the seeds' 128 bits mean, with that format's settings: the paper's format (the
    /// default, bit-exact) or the sign blueprint (one bit per cell of blocks of at most 64
    /// cells, docs/math.md §9).
    #[config(default = "SeedFormat::default()")]
    pub format: SeedFormat,
    /// How the seeds are drawn.
    #[config(default = "RbeInitializer::FanIn { gain: 1.0 }")]
    pub initializer: RbeInitializer,
}

impl RbeLinearConfig {
    /// The block grid of the `[d_output, d_input]` weight.
    pub fn layout(&self) -> Result<BlockLayout, RbeError> {
        Ok(BlockLayout::new(
            self.d_output,
            self.d_input,
            self.block.rows,
            self.block.cols,
        )?)
    }

    /// The same configuration with square `side x side` blocks.
    pub fn with_block_size(self, side: usize) -> Self {
        self.with_block(BlockShape::square(side))
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), RbeError> {
        let layout = self.layout()?;
        self.format.validate(&layout)?;
        if self.residual_rank > layout.rows.min(layout.cols) {
            return Err(RbeError::Config(format!(
                "residual_rank {} exceeds min(d_input, d_output) = {}",
                self.residual_rank,
                layout.rows.min(layout.cols)
            )));
        }
        if let RbeInitializer::FanIn { gain } = self.initializer
            && !(gain.is_finite() && gain > 0.0)
        {
            return Err(RbeError::Config(format!(
                "initializer gain must be > 0, got {gain}"
            )));
        }
        Ok(())
    }

    /// Builds the layer.
    ///
    /// # Panics
    /// If the configuration is invalid; [`RbeLinearConfig::try_init`] returns the error.
    pub fn init<B: Backend>(&self, device: &B::Device) -> RbeLinear<B> {
        self.try_init(device)
            .unwrap_or_else(|err| panic!("RbeLinearConfig::init: {err}"))
    }

    /// Builds the layer, or says why the configuration is invalid.
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<RbeLinear<B>, RbeError> {
        self.validate()?;
        let layout = self.layout()?;
        let seeds =
            self.format
                .init_seeds::<B>(&self.initializer, &layout, self.d_input, device)?;
        self.init_with_seeds(&seeds, device)
    }

    /// Builds the layer around the given seeds (one per block, block-row-major); the
    /// residual and bias are drawn as in [`RbeLinearConfig::init`].
    pub fn init_with_seeds<B: Backend>(
        &self,
        seeds: &[Packed128],
        device: &B::Device,
    ) -> Result<RbeLinear<B>, RbeError> {
        self.validate()?;
        let layout = self.layout()?;
        let seeds = RbeSeeds::from_packed(seeds, &layout, self.format, device)?;
        let residual = (self.residual_rank > 0).then(|| {
            LowRankResidual::init(self.d_input, self.d_output, self.residual_rank, device)
        });
        Ok(RbeLinear::from_parts(
            seeds,
            residual,
            self.init_bias(device),
        ))
    }

    /// A bias drawn as `LinearConfig` draws it: `U(-k, k)`, `k = 1/sqrt(d_input)`.
    pub(crate) fn init_bias<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Option<Param<burn::tensor::Tensor<B, 1>>> {
        self.bias.then(|| {
            let bias = Initializer::KaimingUniform {
                gain: 1.0 / 3f64.sqrt(),
                fan_out_only: false,
            }
            .init_with(
                [self.d_output],
                Some(self.d_input),
                Some(self.d_output),
                device,
            );
            // Drawn now: a clone of a lazy parameter draws its own values, so a fresh layer
            // saved through a clone would store another bias than it computes with.
            trainable_param(bias.id, bias.val())
        })
    }
}
