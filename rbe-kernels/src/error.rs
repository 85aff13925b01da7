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
    /// Bits of a seed that its format reserves (and writes as zero) are set.
    #[error("{format} seed: reserved bits must be zero, got {bits:#x}")]
    ReservedBits {
        /// The seed format.
        format: &'static str,
        /// The reserved field's value.
        bits: u16,
    },
    /// A seed's packed code is outside what its format can write: the ternary seed's base-3
    /// integer at or above `3^64`, or a cell code above 2. (The fields stay small: every
    /// error type that wraps this one grows with it.)
    #[error("{format} seed: {what} is out of range")]
    CodeOutOfRange {
        /// The seed format.
        format: &'static str,
        /// What was out of range.
        what: &'static str,
    },
    /// A seed's scale is negative or not finite (the ternary seed's f16 `alpha`).
    #[error("seed scale alpha must be finite and non-negative, got {0}")]
    InvalidScale(f32),
    /// A cell's 2-bit code on the device is the unused pattern `11` (ternary seeds: `00` is 0,
    /// `01` is +1, `10` is -1).
    #[error("seed {seed}, cell {cell}: 2-bit code 0b11 does not name a level")]
    InvalidCode {
        /// The seed (block) index.
        seed: usize,
        /// The cell index within the block.
        cell: usize,
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
