//! The Burn module: [`RbeLinear`] and its configuration, its seeds as parameters
//! ([`RbeSeeds`]), the optional low-rank residual, the encoder of a trained `Linear`, and
//! the storage arithmetic.

mod compress;
mod config;
mod encode;
mod linear;
mod residual;
mod seeds;
mod storage;

pub use compress::{CompressionReport, Compressor, LayerEncode};
pub use config::{BlockShape, RbeLinearConfig};
pub use encode::EncodeReport;
pub use linear::RbeLinear;
pub use residual::LowRankResidual;
pub use seeds::RbeSeeds;
pub use storage::{SEED_BYTES, StorageReport};
