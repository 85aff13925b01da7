//! Verification machinery for this workspace's tests and `examples/backend_check`: checking
//! a backend against the f64 reference, the parameter shapes a record check compares, and
//! finding a WGPU adapter. Built only with the `testing` feature; not part of the user API.

pub use crate::record::load::{ParamShape, param_shapes};
mod verify;

pub use rbe_kernels::testing::rel_err;
pub use verify::{VerifyReport, random_seeds, verification_cases, verify_backend};

/// The default WGPU device if an adapter exists.
#[cfg(feature = "wgpu")]
///
/// Without one it returns `None` so the caller can skip, unless the environment variable
/// `RBE_REQUIRE_WGPU` is `1` (CI sets it), in which case it panics: a CI run without an
/// adapter must fail, not pass vacuously.
pub fn wgpu_device() -> Option<burn::backend::wgpu::WgpuDevice> {
    use burn::tensor::Tensor;
    let device = burn::backend::wgpu::WgpuDevice::default();
    let probe = device.clone();
    let found = std::panic::catch_unwind(move || {
        Tensor::<burn::backend::Wgpu, 1>::zeros([1], &probe).into_data();
    })
    .is_ok();
    if found {
        Some(device)
    } else if std::env::var("RBE_REQUIRE_WGPU").as_deref() == Ok("1") {
        panic!("RBE_REQUIRE_WGPU=1 but no WGPU adapter was found");
    } else {
        eprintln!("no WGPU adapter: skipping (set RBE_REQUIRE_WGPU=1 to fail instead)");
        None
    }
}
