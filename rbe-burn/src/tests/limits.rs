//! Sizes the kernels cannot index, and records that do not fit, are typed errors (or a
//! documented panic for Burn's plain `load_record`), never an abort or a silent truncation.

use burn::module::Module;

use super::*;
use crate::{BlockShape, RbeError, RbeLinearConfig};

#[test]
fn oversized_blocks_and_dims_are_config_errors() {
    let device = Default::default();
    let huge_block = RbeLinearConfig::new(256, 256).with_block_size(100_000);
    assert!(matches!(
        huge_block.try_init::<Flex>(&device),
        Err(RbeError::Seed(rbe_kernels::KernelError::TooLarge { .. }))
    ));
    let huge_dim = RbeLinearConfig::new(BlockLayout::MAX_DIM + 1, 8);
    assert!(matches!(
        huge_dim.validate(),
        Err(RbeError::Seed(rbe_kernels::KernelError::TooLarge {
            what: "cols",
            ..
        }))
    ));
    let zero = RbeLinearConfig::new(8, 8).with_block(BlockShape::new(0, 8));
    assert!(matches!(
        zero.validate(),
        Err(RbeError::Seed(
            rbe_kernels::KernelError::ZeroDimension { .. }
        ))
    ));
}

#[test]
#[should_panic(expected = "use rbe_burn::load_checked to get this as an error")]
fn plain_load_record_of_another_layout_panics_with_its_documented_message() {
    let device = Default::default();
    let saved = RbeLinearConfig::new(16, 16)
        .with_block_size(8)
        .init::<Flex>(&device);
    let other = RbeLinearConfig::new(16, 16)
        .with_block(BlockShape::new(4, 16))
        .init::<Flex>(&device);
    let _ = other.load_record(saved.into_record());
}
