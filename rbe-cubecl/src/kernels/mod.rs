//! CubeCL kernels (in progress).
