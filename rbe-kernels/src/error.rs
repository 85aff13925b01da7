use thiserror::Error;

/// Everything that can be wrong with a seed, a layout or the buffers handed to a kernel.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum KernelError {
    /// The first float of a seed (`r` in the paper format, `alpha` in the sign blueprint) is
    /// NaN or infinite.
    #[error("seed radius r (first float) must be finite, got {0}")]
    NonFiniteRadius(f32),
    /// The second float of a seed (`theta` in the paper format, `mu` in the sign blueprint)
    /// is NaN or infinite.
    #[error("seed angle theta (second float) must be finite, got {0}")]
    NonFiniteTheta(f32),
    /// A binary seed or seed table has the wrong number of bytes.
    #[error("expected {expected} bytes, got {actual}")]
    ByteLength {
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A dimension or block size is zero.
    #[error("{what} must be at least 1, got 0")]
    ZeroDimension {
        /// Which dimension.
        what: &'static str,
    },
    /// A dimension or block size exceeds what the kernels can index.
    #[error("{what} is {value}, above the limit of {max}")]
    TooLarge {
        /// Which size.
        what: &'static str,
        /// The rejected value.
        value: usize,
        /// The largest accepted value.
        max: usize,
    },
    /// A buffer does not have the length its shape implies.
    #[error("{what}: expected {expected} elements, got {actual}")]
    LengthMismatch {
        /// Which buffer.
        what: &'static str,
        /// Elements needed.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
}

impl KernelError {
    /// `Ok` when a buffer of `actual` elements has the `expected` length its shape implies.
    pub fn check_len(what: &'static str, actual: usize, expected: usize) -> Result<(), Self> {
        if actual == expected {
            Ok(())
        } else {
            Err(Self::LengthMismatch {
                what,
                expected,
                actual,
            })
        }
    }
}
