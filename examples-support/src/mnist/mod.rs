//! MNIST with dense, RBE and low-rank 784-256-10 ReLU classifiers, trained with burn-train.

pub mod data;
pub mod init_from;
pub mod model;
mod peak_rss;
pub mod progress;
pub mod quantized;
pub mod report;
pub mod run;
pub mod training;
