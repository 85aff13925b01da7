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

/// Everything about one RBE layer that is fixed at construction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RbeSpec {
    /// The block grid of the `[d_output, d_input]` weight.
    pub layout: BlockLayout,
    /// Which computation generates the weights inside the fused forward.
    pub kernel: RbeKernel,
    /// The state-transition threshold `t`; `None` computes no transition counts.
    pub transition_threshold: Option<f32>,
}

/// The gradients one backward pass produces.
#[derive(Debug)]
pub struct RbeGrads<B: Backend> {
    /// `dL/dx = G W`, `[batch, d_input]`; `None` when it was not asked for.
    pub x: Option<FloatTensor<B>>,
    /// `dL/d(r, theta)` per seed, `[n_blocks, 2]`.
    pub coords: FloatTensor<B>,
    /// Net transition count per seed and 2-bit slot, `#{dW > t} - #{dW < -t}`, as floats,
    /// `[n_blocks, 4]`; `None` when the spec has no threshold.
    pub transitions: Option<FloatTensor<B>>,
}
