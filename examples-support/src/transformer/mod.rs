//! A character-level GPT whose attention and MLP projections are `RbeLinear` layers, or
//! are compressed from a trained dense one ([`finetune`]).

pub mod checkpoint;
pub mod data;
pub mod finetune;
pub mod kv_cache;
pub mod method;
pub mod model;
pub mod report;
pub mod training;
