//! Shared by the bench binaries (`linear_forward`, `training_step`, `weight_generation`,
//! `model_inference`, `dense_step`); each binary uses a different subset.

pub mod backends;
pub mod bound;
pub mod grid;
pub mod heap_meter;
pub mod machine;
pub mod matmul_rate;
pub mod memory;
pub mod results;
pub mod stream;
pub use rbe_examples::bench_schema as schema;
pub mod timing;
