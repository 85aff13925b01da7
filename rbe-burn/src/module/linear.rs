//! [`RbeLinear`]: a linear layer whose weight is generated from RBE seeds.

use burn::module::{Content, DisplaySettings, Module, ModuleDisplay, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};
use rbe_kernels::{BlockLayout, Packed128};

use super::{LowRankResidual, RbeSeeds, StorageReport};
use crate::RbeError;
use crate::backend::{RbeBackend, RbeSpec};
use crate::formats::SeedFormat;
use crate::record::RbeLayerHeader;

/// A linear layer `y = x W^T + x V^T U^T + b` whose `W` is generated block by block from
/// 128-bit seeds and never stored.
///
/// Build it with [`crate::RbeLinearConfig`], exactly where `LinearConfig` would go:
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
/// use burn::nn::{Linear, LinearConfig, Relu};
/// use burn::prelude::*;
/// use burn::tensor::Distribution;
/// use rbe_burn::{RbeBackend, RbeLinear, RbeLinearConfig};
///
/// #[derive(Module, Debug)]
/// struct Mlp<B: Backend> {
///     hidden: RbeLinear<B>, // was: Linear<B>
///     head: Linear<B>,
///     activation: Relu,
/// }
///
/// impl<B: RbeBackend> Mlp<B> {
///     fn new(device: &B::Device) -> Self {
///         Self {
///             hidden: RbeLinearConfig::new(784, 256).with_block_size(8).init(device),
///             head: LinearConfig::new(256, 10).init(device),
///             activation: Relu::new(),
///         }
///     }
///
///     fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
///         self.head.forward(self.activation.forward(self.hidden.forward(x)))
///     }
/// }
///
/// type B = Autodiff<NdArray>;
/// let device = Default::default();
/// let model = Mlp::<B>::new(&device);
/// let x = Tensor::<B, 2>::random([4, 784], Distribution::Default, &device);
/// let loss = model.forward(x).powi_scalar(2).mean();
/// let grads = loss.backward();
/// assert!(model.hidden.seeds.coords().grad(&grads).is_some());
/// println!("{}", model.hidden); // RbeLinear {d_input: 784, d_output: 256, ... compression: 15.8x}
/// ```
///
/// # Training
/// `r` and `theta` are ordinary float parameters: any Burn optimizer trains them. After
/// every update (in fact after every `Module::map`, through which Burn optimizers and any
/// other mapper write parameters) `r` is clamped into the configured radius range, as the
/// paper's update rule does. The state transitions of the paper move the
/// CORDIC bits from the sign of `dW`; they are applied by wrapping the optimizer in
/// [`crate::RbeOptimizer`] (works with the `Learner`), or by calling
/// [`crate::apply_state_transitions`] in a custom loop:
///
/// ```
/// # use burn::backend::{Autodiff, NdArray};
/// # use burn::optim::{AdamConfig, GradientsParams, Optimizer};
/// # use burn::prelude::*;
/// # use burn::tensor::Distribution;
/// # use rbe_burn::{apply_state_transitions, RbeLinearConfig};
/// # type B = Autodiff<NdArray>;
/// # let device = Default::default();
/// let mut model = RbeLinearConfig::new(16, 8).with_block_size(4).init::<B>(&device);
/// let mut optim = AdamConfig::new().init();
/// for _ in 0..3 {
///     let x = Tensor::<B, 2>::random([32, 16], Distribution::Default, &device);
///     let loss = model.forward(x).powi_scalar(2).mean();
///     let mut grads = GradientsParams::from_grads(loss.backward(), &model);
///     model = apply_state_transitions(model, &mut grads); // moves the bits, consumes the counts
///     model = optim.step(1e-2, model, grads);               // trains r, theta, residual, bias
/// }
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct RbeLinear<B: Backend> {
    /// The seeds, one per block.
    pub seeds: RbeSeeds<B>,
    /// The optional dense low-rank residual.
    pub residual: Option<LowRankResidual<B>>,
    /// The optional bias, `[d_output]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> RbeLinear<B> {
    pub(crate) fn from_parts(
        seeds: RbeSeeds<B>,
        residual: Option<LowRankResidual<B>>,
        bias: Option<Param<Tensor<B, 1>>>,
    ) -> Self {
        let header = RbeLayerHeader {
            layout: seeds.layout(),
            residual_rank: residual.as_ref().map_or(0, LowRankResidual::rank),
            bias: bias.is_some(),
            format: seeds.format().id(),
        };
        Self {
            seeds: seeds.with_header(header),
            residual,
            bias,
        }
    }

    /// Input features: the last dimension `forward` accepts.
    pub fn d_input(&self) -> usize {
        self.seeds.layout().cols
    }

    /// Output features: the last dimension `forward` returns.
    pub fn d_output(&self) -> usize {
        self.seeds.layout().rows
    }

    /// How the `[d_output, d_input]` weight is tiled into seeds.
    pub fn layout(&self) -> BlockLayout {
        self.seeds.layout()
    }

    /// What the seeds mean, with the format's settings.
    pub fn format(&self) -> SeedFormat {
        self.seeds.format()
    }

    /// The same layer with other settings of its format, e.g. the paper format's forward
    /// kernel for verification and benches; the seeds and their parameter ids stay.
    ///
    /// # Errors
    /// [`RbeError::Config`] when `format` is another format than the layer's (its seeds
    /// would mean something else), or its settings are invalid for the layer.
    pub fn with_format(self, format: SeedFormat) -> Result<Self, RbeError> {
        if format.id() != self.format().id() {
            return Err(RbeError::Config(format!(
                "a {} layer cannot take {} settings: its seeds would change meaning",
                self.format().id().name(),
                format.id().name()
            )));
        }
        format.validate(&self.layout())?;
        Ok(Self {
            seeds: self.seeds.with_format(format),
            ..self
        })
    }

    /// The op's view of the layer.
    pub fn spec(&self) -> RbeSpec {
        self.seeds.spec()
    }

    /// Rank of the residual (0 without one).
    pub fn residual_rank(&self) -> usize {
        self.residual.as_ref().map_or(0, LowRankResidual::rank)
    }

    /// Every stored byte.
    pub fn storage(&self) -> StorageReport {
        StorageReport::of(self.layout(), self.residual_rank(), self.bias.is_some())
    }

    /// Total bytes stored: seeds, residual and bias.
    pub fn storage_bytes(&self) -> usize {
        self.storage().total_bytes
    }

    /// Bytes of the equivalent dense `Linear` over [`RbeLinear::storage_bytes`].
    pub fn compression_ratio(&self) -> f64 {
        self.storage().compression_ratio()
    }

    /// The seeds, downloaded.
    pub fn seeds_packed(&self) -> Result<Vec<Packed128>, RbeError> {
        self.seeds.to_packed()
    }
}

impl<B: RbeBackend> RbeLinear<B> {
    /// Applies the layer to `[..., d_input]`.
    ///
    /// # Shapes
    /// - input: `[..., d_input]`
    /// - output: `[..., d_output]`
    ///
    /// # Panics
    /// If the last dimension is not `d_input`; [`RbeLinear::try_forward`] returns the error.
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        self.try_forward(input)
            .unwrap_or_else(|err| panic!("RbeLinear::forward: {err}"))
    }

    /// [`RbeLinear::forward`], with a typed error for a wrong input shape or an input too
    /// large for the kernels' u32 indices.
    pub fn try_forward<const D: usize>(
        &self,
        input: Tensor<B, D>,
    ) -> Result<Tensor<B, D>, RbeError> {
        let dims = input.dims();
        if D == 0 || dims[D - 1] != self.d_input() {
            let mut expected = dims.to_vec();
            if let Some(last) = expected.last_mut() {
                *last = self.d_input();
            }
            return Err(RbeError::shape("RbeLinear input", &expected, &dims));
        }
        let rows = dims[..D - 1].iter().product::<usize>();
        // Kernels index activations with u32.
        let widest = self.d_input().max(self.d_output());
        let max_rows = u32::MAX as usize / widest;
        if rows > max_rows {
            return Err(RbeError::TooLarge {
                what: "RbeLinear input rows".into(),
                value: rows,
                max: max_rows,
            });
        }
        let x = input.reshape([rows, self.d_input()]);

        let mut y = rbe_linear(x.clone(), &self.seeds, &self.seeds.spec());
        if let Some(residual) = &self.residual {
            y = y + residual.forward(x);
        }
        if let Some(bias) = &self.bias {
            y = y + bias.val().unsqueeze_dim(0);
        }
        let mut out = dims;
        out[D - 1] = self.d_output();
        Ok(y.reshape(out))
    }

    /// The dense weight `[d_output, d_input]` the seeds and residual stand for, for
    /// inspection and tests. Training never calls it.
    pub fn weight(&self) -> Tensor<B, 2> {
        let spec = self.seeds.spec();
        let w = B::rbe_decode(
            self.seeds.coords().into_primitive().tensor(),
            self.seeds.op_bits(&spec).into_primitive(),
            &spec,
        );
        let w = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(w));
        match &self.residual {
            Some(r) => w + r.u.val().matmul(r.v.val()),
            None => w,
        }
    }
}

/// `x W^T` through the backend op, with the seeds' transition probe attached.
///
/// # Shapes
/// - `x`: `[batch, d_input]`
/// - returns `[batch, d_output]`
pub(crate) fn rbe_linear<B: RbeBackend>(
    x: Tensor<B, 2>,
    seeds: &RbeSeeds<B>,
    spec: &RbeSpec,
) -> Tensor<B, 2> {
    let y = B::rbe_forward(
        x.into_primitive().tensor(),
        seeds.coords().into_primitive().tensor(),
        seeds.op_bits(spec).into_primitive(),
        seeds.probe().map(|p| p.into_primitive().tensor()),
        spec,
    );
    Tensor::from_primitive(TensorPrimitive::Float(y))
}

impl<B: Backend> ModuleDisplay for RbeLinear<B> {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        DisplaySettings::new()
            .with_new_line_after_attribute(false)
            .optional()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        let layout = self.layout();
        let storage = self.storage();
        content
            .add("d_input", &self.d_input())
            .add("d_output", &self.d_output())
            .add("bias", &self.bias.is_some())
            .add(
                "block",
                &format!("{}x{}", layout.block_rows, layout.block_cols),
            )
            .add("seeds", &layout.num_blocks())
            .add("residual_rank", &self.residual_rank())
            .add("format", &format!("{:?}", self.format()))
            .add("bytes", &storage.total_bytes)
            .add(
                "compression",
                &format!("{:.1}x", storage.compression_ratio()),
            )
            .optional()
    }
}
