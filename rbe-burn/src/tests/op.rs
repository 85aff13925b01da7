//! The backend op against the f64 reference, through [`crate::verify_backend`].

use super::*;
use crate::{RbeBackend, RbeKernel, VerifyReport, verify_backend};

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

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_op_matches_reference() {
    check::<NdArray>(&Default::default(), RbeKernel::ClosedForm, 11);
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_closed_form_op_matches_reference() {
    if let Some(device) = wgpu_device() {
        check::<Wgpu>(&device, RbeKernel::ClosedForm, 12);
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_cordic_op_matches_reference() {
    if let Some(device) = wgpu_device() {
        check::<Wgpu>(&device, RbeKernel::Cordic, 13);
    }
}
