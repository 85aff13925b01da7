//! [`RbeLayerHeader`]: the structure of the layer a record's seeds belong to.

use rbe_kernels::BlockLayout;
use serde::{Deserialize, Serialize};

use crate::formats::FormatId;

/// The structure of the layer a set of seeds belongs to: what a record must match to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbeLayerHeader {
    /// The block grid of the weight.
    pub layout: BlockLayout,
    /// Rank of the low-rank residual, 0 without one.
    pub residual_rank: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
    /// What the seeds' bits mean. Absent from records written before the sign blueprint
    /// existed, which are all [`FormatId::Paper`].
    #[serde(default)]
    pub format: FormatId,
}

impl std::fmt::Display for RbeLayerHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, residual rank {}, {}{}",
            self.layout,
            self.residual_rank,
            if self.bias { "bias" } else { "no bias" },
            // The paper's format says nothing, as records written before formats existed.
            if self.format == FormatId::Paper {
                String::new()
            } else {
                format!(", {} seeds", self.format.name())
            }
        )
    }
}
