//! The paper format's CubeCL kernels and their host-side launchers (feature `kernels`).
//!
//! Every kernel lives in its own file with its launcher and a test against the f64
//! [`super::reference`] on the WGPU runtime. Shapes follow [`crate::BlockLayout`]: the weight is
//! `[rows, cols] = [d_output, d_input]`, `nI x nJ` blocks of `br x bc`, seed `I * nJ + J`.
//!
//! | launcher | launches | computes | used by |
//! |---|---|---|---|
//! | [`seed_coefficients`] | 1 | per seed `(a, b, da/dr, db/dr)` of the closed form, and the `[2, br, bc]` basis table | forward, backward |
//! | [`closed_form_forward`] | 1 | `y = x W^T` from the coefficients, projecting `x` in shared memory | forward |
//! | [`fused_closed_form_matmul`] | 2 | the two above | forward |
//! | [`fused_cordic_matmul`] | 1 | `y = x W^T`, each weight by the CORDIC loop in registers (the shared tiled matmul) | forward |
//! | [`cordic_decode`] | 1 | the dense `W`, by the CORDIC loop | inspection, tests |
//! | [`project_blocks`] | 1 | `U[n, J, (C|S), i] = sum_j basis(i, j) x[n, J*bc + j]`, and `Q` for `dL/dx` | backward |
//! | [`grad_input`] | 1 | `dL/dx = G W` from `Q` | backward |
//! | [`seed_gradients`] | 1-2 | `dL/d(r, theta)` per seed, split over the batch | backward |
//! | [`transition_counts`] | 1 | net `#{dW > t} - #{dW < -t}` per seed and slot | backward |
//! | [`backward`] | 3-6 | the backward pass from the pieces above | backward |
//!
//! The CORDIC constants reach the kernels from [`super::reference`] as the comptime value
//! [`Cordic`]; the shared tiled matmul (`crate::cube`) gets them as the comptime
//! configuration of the CORDIC weight it is instantiated with (`cordic::CordicWeight`).
//!
//! None of them allocates a `rows x cols` buffer except [`cordic_decode`], whose output is
//! that matrix by definition. How this is checked: every buffer a launcher creates goes
//! through one function that, in tests, records the largest allocation; the test
//! `allocations::no_weight_sized_buffer` runs the forward and backward launchers on shapes
//! where the weight dwarfs the activations (e.g. 512 x 768 at batch 4) and asserts that no
//! buffer reaches an eighth of the weight's size, while `cordic_decode` (the positive
//! control) allocates exactly the weight. The benches report device memory on top
//! (`benches/linear_forward.rs`). Inputs must be contiguous.
//!
//! Float and int element types are chosen at launch from the tensors' dtypes
//! (`#[define(F, I)]`), so one kernel serves f32/f16/bf16 and i32/i64 backends.

mod allocations;
mod backward;
mod basis;
mod coefficients;
mod constants;
mod cordic;
mod cordic_decode;
mod fused_closed_form_matmul;
mod fused_cordic_matmul;
mod grad_input;
mod project;
mod seed_gradients;
mod transition_counts;

pub use backward::backward;
pub use coefficients::{Coefficients, seed_coefficients};
pub use constants::Cordic;
pub use cordic_decode::cordic_decode;
pub use fused_closed_form_matmul::{closed_form_forward, fused_closed_form_matmul};
pub use fused_cordic_matmul::fused_cordic_matmul;
pub use grad_input::grad_input;
pub use project::{Projections, project_blocks};
pub use seed_gradients::{BATCH_CHUNK, seed_gradients};
pub use transition_counts::transition_counts;
