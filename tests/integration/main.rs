//! End-to-end tests of the examples' training paths, the backends and the recorders, in one
//! test binary (each test binary links all of Burn, so there is only this one).

mod backends;
mod blobs;
mod compress;
mod data_parallel;
mod learner;
mod mnist;
mod records;
mod scratch;
mod transformer;
