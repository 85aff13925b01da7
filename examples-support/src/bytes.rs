//! Byte accounting of stored parameters, shared by every kind of layer the examples compare.

/// Bytes per stored float: every recorder the examples use keeps full precision.
pub const FLOAT_BYTES: usize = 4;

/// Stored bytes, split into what stands for the weight and the biases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParamBytes {
    /// Everything that stands for `W`: dense weights, RBE seeds and residual, `U`, `V`, or
    /// quantized values and their scales.
    pub weight: usize,
    /// Biases.
    pub bias: usize,
}

impl ParamBytes {
    /// Weights and biases.
    pub fn total(&self) -> usize {
        self.weight + self.bias
    }
}

impl std::ops::Add for ParamBytes {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            weight: self.weight + other.weight,
            bias: self.bias + other.bias,
        }
    }
}
