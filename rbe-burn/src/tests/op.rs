//! The backend op against the f64 reference, through [`crate::testing::verify_backend`].

use crate::testing::{VerifyReport, verify_backend};
use crate::{RbeBackend, RbeKernel};

fn assert_verified(report: VerifyReport) {
    let tol = 1e-5;
    for (what, err) in [
        ("forward", report.forward_max_rel_err),
        ("grad_x", report.grad_x_max_rel_err),
        ("grad_seed", report.grad_seed_max_rel_err),
        ("decode", report.decode_max_rel_err),
    ] {
        assert!(
            err <= tol,
            "{what}: max relative error {err:e} > {tol:e} ({report:?})"
        );
    }
    assert!(report.transitions_equal, "{report:?}");
    assert!(report.cases >= 30);
}

fn check<B: RbeBackend>(device: &B::Device, kernel: RbeKernel, seed: u64) {
    assert_verified(verify_backend::<B>(device, kernel, 30, seed));
}

backend_tests!(closed_form_op_matches_reference, |B, device| {
    check::<B>(device, RbeKernel::ClosedForm, 11)
});

// The tensor-op bodies (Flex, NdArray) run the closed form for either kernel; only the
// CubeCL kernels have a CORDIC loop to check.
backend_tests!(
    cordic_op_matches_reference,
    [wgpu_cube, wgpu_fusion],
    |B, device| check::<B>(device, RbeKernel::Cordic, 13)
);
