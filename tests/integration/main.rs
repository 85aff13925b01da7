//! End-to-end tests of the examples' training paths, in one test binary (each test binary
//! links all of Burn, so there is only this one).

mod learner;
mod mnist;
mod transformer;
