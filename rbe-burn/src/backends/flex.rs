//! [`RbeBackend`] for Flex, Burn 0.21's recommended CPU backend: the tensor-op default
//! bodies.

use burn_flex::Flex;

use crate::backend::RbeBackend;

impl RbeBackend for Flex {}
