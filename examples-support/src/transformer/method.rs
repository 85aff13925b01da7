//! How a dense checkpoint's projections are compressed ([`CompressMethod`]), and how far
//! each compressed weight is from its dense original ([`EncodeErrors`]).

use super::model::ProjectionKind;
use crate::quantized_linear::QuantGrid;

/// Weights per block of the Burn-quantized methods, each block with its own f32 scale.
pub const QUANT_BLOCK: usize = 32;

/// How the dense projections become compressed ones.
#[derive(Debug, Clone, PartialEq)]
pub enum CompressMethod {
    /// Encoded into RBE seeds by [`Compressor`] with the settings of this kind
    /// ([`ProjectionKind::Rbe`] or [`ProjectionKind::SignBlueprint`]).
    Rbe(ProjectionKind),
    /// `U Σ`, `Vᵀ` of the truncated SVD of each weight: [`Layer::LowRank`].
    LowRank {
        /// Kept singular values per layer.
        rank: usize,
    },
    /// Burn's block-wise post-training quantization to this grid, blocks of
    /// [`QUANT_BLOCK`]: [`Layer::Quantized`]. Evaluation only (no fine-tuning).
    BurnQuant(QuantGrid),
}

impl CompressMethod {
    /// `paper-b16-r8`, `sign-b8`, `lowrank-k4`, `burn-q4`, `burn-q2` and the like; a paper
    /// run without state transitions ends in `-nt`.
    pub fn name(&self) -> String {
        match self {
            Self::Rbe(ProjectionKind::Rbe {
                block_size,
                residual_rank,
                transitions,
            }) => format!(
                "paper-b{block_size}-r{residual_rank}{}",
                if *transitions { "" } else { "-nt" }
            ),
            Self::Rbe(ProjectionKind::SignBlueprint { block_size, .. }) => {
                format!("sign-b{block_size}")
            }
            Self::Rbe(ProjectionKind::Ternary { block_size, .. }) => {
                format!("ternary-b{block_size}")
            }
            Self::Rbe(ProjectionKind::Dense) => "dense".into(),
            Self::LowRank { rank } => format!("lowrank-k{rank}"),
            Self::BurnQuant(_) => self.family().into(),
        }
    }

    /// The JSON `model` field: `rbe`, `sign`, `lowrank`, `burn-q4` or `burn-q2`.
    pub fn family(&self) -> &'static str {
        match self {
            Self::Rbe(ProjectionKind::Rbe { .. }) => "rbe",
            Self::Rbe(ProjectionKind::SignBlueprint { .. }) => "sign",
            Self::Rbe(ProjectionKind::Ternary { .. }) => "ternary",
            Self::Rbe(ProjectionKind::Dense) => "dense",
            Self::LowRank { .. } => "lowrank",
            Self::BurnQuant(QuantGrid::Q4f | QuantGrid::Q4s) => "burn-q4",
            Self::BurnQuant(QuantGrid::Q2f | QuantGrid::Q2s) => "burn-q2",
        }
    }

    /// Whether the compressed model can be fine-tuned: Burn's quantized tensors carry no
    /// gradient, so the quantized methods are evaluation only.
    pub fn trainable(&self) -> bool {
        !matches!(self, Self::BurnQuant(_))
    }
}

/// `||W - W'||_F / ||W||_F` of one compressed weight.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerError {
    /// The layer, as [`Gpt::try_map_layers`] names it.
    pub name: String,
    /// Relative Frobenius error of the weight (bias not included).
    pub rel_error: f64,
    /// `||W||_F`, which weighs the layer in [`EncodeErrors::overall`].
    pub weight_norm: f64,
}

/// How far each compressed weight is from its dense original, the same quantity for every
/// method (for RBE, what the encode reports say).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct EncodeErrors {
    /// One entry per compressed layer, in model order.
    pub layers: Vec<LayerError>,
}

impl EncodeErrors {
    /// `sqrt(sum ||W - W'||²) / sqrt(sum ||W||²)` over the layers, as
    /// `CompressionReport::rel_frobenius_error` computes it (0 when empty).
    pub fn overall(&self) -> f64 {
        let (err, norm) = self.layers.iter().fold((0.0, 0.0), |(e, n), l| {
            let abs = l.rel_error * l.weight_norm;
            (e + abs * abs, n + l.weight_norm * l.weight_norm)
        });
        if norm > 0.0 { (err / norm).sqrt() } else { 0.0 }
    }
}
