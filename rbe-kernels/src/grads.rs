/// What one backward pass of an RBE layer produces, whatever the seed format and wherever
/// it ran: `T` is `Vec<f32>` for the CPU kernels, a device tensor for the CubeCL kernels and
/// Burn's backends, `Vec<f64>` for the references.
///
/// # Shapes
/// - `x`: `dL/dx = G W`, `[batch, d_input]`; `None` when it was not asked for.
/// - `coords`: `dL/d(coords)`, `[n_blocks, 2]`: the two floats of each seed (`(r, theta)` in
///   the paper format, `(alpha, mu)` in the sign blueprint).
/// - `signal`: what moves the seeds' bits, `[n_blocks, width]` with the format's width;
///   `None` when it was not asked for. Paper format: net transition count per 2-bit slot
///   (width 4). Sign blueprint: `dL/dw` per cell (width 64).
#[derive(Debug, Clone, PartialEq)]
pub struct Grads<T> {
    /// `dL/dx`.
    pub x: Option<T>,
    /// `dL/d(coords)`.
    pub coords: T,
    /// The bits' signal.
    pub signal: Option<T>,
}

impl<T> Grads<T> {
    /// The same gradients with every tensor converted by `f`.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Grads<U> {
        Grads {
            x: self.x.map(&mut f),
            coords: f(self.coords),
            signal: self.signal.map(f),
        }
    }
}
