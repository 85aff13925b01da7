//! [`RbeLinearConfig`]: the drop-in counterpart of Burn's `LinearConfig`.

use burn::config::Config;
use burn::module::{Initializer, Param};
use burn::tensor::backend::Backend;
use rbe_cubecl::{BlockLayout, Packed128};

use crate::{
    BitTraining, LowRankResidual, RbeError, RbeInitializer, RbeKernel, RbeLinear, RbeSeeds,
    RbeSpec, SeedFormat,
};

/// Configuration of an [`RbeLinear`] layer; swap it in for `LinearConfig`.
///
/// ```
/// use rbe_burn::RbeLinearConfig;
/// let config = RbeLinearConfig::new(784, 256).with_block_size(8).with_residual_rank(4);
/// assert_eq!(config.layout().unwrap().num_blocks(), 98 * 32);
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
    /// Side of the square blocks one seed generates.
    #[config(default = 32)]
    pub block_size: usize,
    /// Rows per block, overriding `block_size` (rectangular blocks).
    #[config(default = "None")]
    pub block_rows: Option<usize>,
    /// Columns per block, overriding `block_size` (rectangular blocks).
    #[config(default = "None")]
    pub block_cols: Option<usize>,
    /// Rank of the dense residual `U V`; 0 is pure RBE, as in the paper.
    #[config(default = 0)]
    pub residual_rank: usize,
    /// Whether backward passes produce state-transition counts.
    #[config(default = true)]
    pub state_transitions: bool,
    /// The transition threshold `t` on `|dW|` (docs/math.md §5).
    #[config(default = 0.1)]
    pub transition_threshold: f64,
    /// The forward kernel on CubeCL backends (paper format only).
    #[config(default = "RbeKernel::ClosedForm")]
    pub kernel: RbeKernel,
    /// What the seeds' 128 bits mean: the paper's format (the default, bit-exact) or the
    /// sign blueprint (one bit per cell of blocks of at most 64 cells, docs/math.md §9).
    ///
    /// ```
    /// use rbe_burn::{RbeLinearConfig, SeedFormat};
    /// let config = RbeLinearConfig::new(784, 256)
    ///     .with_block_size(8)
    ///     .with_format(SeedFormat::SignBlueprint);
    /// assert!(config.validate().is_ok());
    /// assert!(config.with_block_size(16).validate().is_err()); // 256 cells > 64 bits
    /// ```
    #[config(default = "SeedFormat::Paper")]
    pub format: SeedFormat,
    /// How the bits of a sign-blueprint layer learn; ignored by the paper format, whose
    /// bits move by the state transitions. `state_transitions = false` freezes them.
    #[config(default = "BitTraining::StraightThrough")]
    pub bit_training: BitTraining,
    /// How the seeds are drawn.
    #[config(default = "RbeInitializer::FanIn { gain: 1.0 }")]
    pub initializer: RbeInitializer,
    /// Lower end of the clamp on `r` (the paper's 0.1). The sign blueprint ignores both ends
    /// and keeps `alpha >= 0` instead, so that bit 1 is always the upper level.
    ///
    /// The clamp runs inside the seeds' `Module::map`, which is how Burn optimizers write
    /// their updates, so any optimizer keeps `r` in range. Every other mapper (e.g. one that
    /// casts or perturbs parameters) goes through it too: the seeds can never hold an `r`
    /// outside `[radius_min, radius_max]`.
    #[config(default = 0.1)]
    pub radius_min: f64,
    /// Upper end of the clamp on `r` (the paper's 2.0).
    #[config(default = 2.0)]
    pub radius_max: f64,
}

impl RbeLinearConfig {
    /// The block grid of the `[d_output, d_input]` weight.
    pub fn layout(&self) -> Result<BlockLayout, RbeError> {
        Ok(BlockLayout::new(
            self.d_output,
            self.d_input,
            self.block_rows.unwrap_or(self.block_size),
            self.block_cols.unwrap_or(self.block_size),
        )?)
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), RbeError> {
        let layout = self.layout()?;
        if self.format == SeedFormat::SignBlueprint {
            rbe_cubecl::sign_blueprint::check_block(&layout)?;
        }
        if self.residual_rank > layout.rows.min(layout.cols) {
            return Err(RbeError::Config(format!(
                "residual_rank {} exceeds min(d_input, d_output) = {}",
                self.residual_rank,
                layout.rows.min(layout.cols)
            )));
        }
        if !(self.transition_threshold.is_finite() && self.transition_threshold >= 0.0) {
            return Err(RbeError::Config(format!(
                "transition_threshold must be finite and >= 0, got {}",
                self.transition_threshold
            )));
        }
        if !(self.radius_min.is_finite()
            && self.radius_max.is_finite()
            && 0.0 < self.radius_min
            && self.radius_min <= self.radius_max)
        {
            return Err(RbeError::Config(format!(
                "need 0 < radius_min <= radius_max, both finite; got [{}, {}]",
                self.radius_min, self.radius_max
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

    /// The op's view of this configuration.
    pub fn spec(&self) -> Result<RbeSpec, RbeError> {
        Ok(RbeSpec {
            layout: self.layout()?,
            format: self.format,
            kernel: self.kernel,
            transition_threshold: self
                .state_transitions
                .then_some(self.transition_threshold as f32),
        })
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
        let spec = self.spec()?;
        let seeds = match self.format {
            SeedFormat::Paper => self.initializer.seeds::<B>(
                spec.layout.num_blocks(),
                self.d_input,
                (self.radius_min, self.radius_max),
                device,
            )?,
            SeedFormat::SignBlueprint => {
                self.initializer
                    .sign_seeds::<B>(&spec.layout, self.d_input, device)?
            }
        };
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
        let spec = self.spec()?;
        if seeds.len() != spec.layout.num_blocks() {
            return Err(RbeError::shape(
                "seeds",
                &[spec.layout.num_blocks()],
                &[seeds.len()],
            ));
        }
        let seeds = match self.format {
            SeedFormat::Paper => RbeSeeds::from_packed(seeds, self.radius_range(), device)?,
            SeedFormat::SignBlueprint => {
                RbeSeeds::from_sign_packed(seeds, &spec.layout, self.bit_training, device)?
            }
        };
        let residual = (self.residual_rank > 0).then(|| {
            LowRankResidual::init(self.d_input, self.d_output, self.residual_rank, device)
        });
        Ok(RbeLinear::from_parts(
            seeds,
            residual,
            self.init_bias(device),
            spec,
        ))
    }

    pub(crate) fn radius_range(&self) -> (f32, f32) {
        (self.radius_min as f32, self.radius_max as f32)
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
            Param::initialized(bias.id, bias.val())
        })
    }
}
