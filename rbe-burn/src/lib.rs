//! Burn integration for RBE.
