//! The types the backend op shares with every implementation: what a layer is
//! ([`RbeSpec`]), which kernel generates its weights ([`RbeKernel`]) and what a backward pass
//! returns ([`RbeGrads`]).

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use rbe_cubecl::BlockLayout;

/// Which computation generates the weights inside the fused product.
///
/// Both give the same `y` to float tolerance: the closed form is exact (docs/math.md §3).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum RbeKernel {
    /// `w = A(r) cos(psi + theta + c)`, factored per column block: about `2MN/B + 2BN`
    /// multiply-adds per input row instead of `MN`.
    #[default]
    ClosedForm,
    /// The paper's 20-step CORDIC loop per weight, in registers. For verification and
    /// benches. Backends without CubeCL kernels use the closed form for both.
    Cordic,
}

/// What the 128 bits of a seed mean.
///
/// Both formats store one [`rbe_cubecl::Packed128`] per block in the same tensors (`coords`
/// `[n_blocks, 2]` floats, `bits` `[n_blocks, 2]` i32 halves of `hi`), so records, the
/// storage arithmetic and every recorder treat them alike; only the weight formula differs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum SeedFormat {
    /// The paper's seed, bit-exact: `coords = (r, theta)`, `hi` = CORDIC directions and
    /// state fields, two real degrees of freedom per block (docs/math.md §1–§5).
    #[default]
    Paper,
    /// The sign blueprint (docs/math.md §9): one bit per cell of a block of at most 64
    /// cells, `coords = (alpha, mu)`, `w_ij = mu + alpha * (2 * bit_ij - 1)`.
    SignBlueprint,
}

impl SeedFormat {
    /// Columns of the per-seed signal a backward pass returns for the bits: 4 transition
    /// slots for the paper's format, 64 cells for the sign blueprint.
    pub fn signal_width(self) -> usize {
        match self {
            Self::Paper => 4,
            Self::SignBlueprint => rbe_cubecl::sign_blueprint::SIGN_CELLS,
        }
    }
}

/// How the bits of a [`SeedFormat::SignBlueprint`] layer learn (docs/math.md §9).
///
/// `alpha` and `mu` have exact gradients and are trained by the wrapped optimizer either way.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum BitTraining {
    /// Straight-through: during training each cell has a latent f32 weight, a float
    /// parameter of the seeds that the optimizer moves by `dL/dw` of its cell; after every
    /// update a bit is `latent >= mu`. The latent is never saved: the stored model is the
    /// seeds, and a loaded model starts a fresh latent from its seeds.
    #[default]
    StraightThrough,
    /// Bop-style flips without a latent weight: [`crate::RbeOptimizer`] keeps a moving
    /// average `m` of `dL/dw` per cell, `m <- (1 - gamma) m + gamma g`, and flips a bit when
    /// `|m| > tau` and the average pushes the weight towards the other level
    /// ([`rbe_cubecl::sign_blueprint::bop_step`]; `gamma` and `tau` are the optimizer's,
    /// [`crate::RbeOptimizer::with_bit_flips`]).
    Flip,
}

/// Everything about one RBE layer that is fixed at construction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RbeSpec {
    /// The block grid of the `[d_output, d_input]` weight.
    pub layout: BlockLayout,
    /// What the seeds' bits mean.
    pub format: SeedFormat,
    /// Which computation generates the weights inside the fused forward.
    pub kernel: RbeKernel,
    /// The state-transition threshold `t`; `None` computes no transition counts. For the
    /// sign blueprint, `Some(_)` asks for the per-cell signal (the threshold is not used).
    pub transition_threshold: Option<f32>,
}

impl RbeSpec {
    /// Columns of [`RbeGrads::transitions`] and of the probe: see
    /// [`SeedFormat::signal_width`].
    pub fn signal_width(&self) -> usize {
        self.format.signal_width()
    }
}

/// The gradients one backward pass produces.
#[derive(Debug)]
pub struct RbeGrads<B: Backend> {
    /// `dL/dx = G W`, `[batch, d_input]`; `None` when it was not asked for.
    pub x: Option<FloatTensor<B>>,
    /// `dL/d(r, theta)` per seed, `[n_blocks, 2]`.
    pub coords: FloatTensor<B>,
    /// The signal that moves the bits, `[n_blocks, spec.signal_width()]`; `None` when the
    /// spec has no threshold. Paper format: net transition count per seed and 2-bit slot,
    /// `#{dW > t} - #{dW < -t}`, as floats. Sign blueprint: `dL/dw` per cell, cell `(i, j)`
    /// at column `i * block_cols + j`, 0 for cells outside the matrix.
    pub transitions: Option<FloatTensor<B>>,
}
