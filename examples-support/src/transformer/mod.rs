//! A character-level GPT whose attention and MLP projections are `RbeLinear` layers.

pub mod checkpoint;
pub mod data;
pub mod model;
pub mod training;
