//! A weight as its base plus a low-rank update, W + scale·B·A, read row by
//! row without forming the update (a LoRA adapter applied to its base).

/// A LoRA update of one base matrix: ΔW = scale·B·A (B out × r, A r × in,
/// row-major f64), or its transpose when the base stores the layer as
/// in × out (`fan_in_fan_out`, embeddings).
///
/// ```
/// use tpa_core::tensors::LoraUpdate;
/// // ΔW = 0.5 · [1, 2]ᵀ · [3, 0, 1]
/// let update = LoraUpdate {
///     b: vec![1.0, 2.0], a: vec![3.0, 0.0, 1.0],
///     out: 2, rank: 1, inp: 3, scale: 0.5, transposed: false,
/// };
/// let mut row = [10.0, 10.0];
/// update.add_row_segment(1, 1, &mut row); // ΔW[1, 1..3] = [0, 1]
/// assert_eq!(row, [10.0, 11.0]);
/// ```
#[derive(Debug, Clone)]
pub struct LoraUpdate {
    pub b: Vec<f64>,
    pub a: Vec<f64>,
    pub out: usize,
    pub rank: usize,
    pub inp: usize,
    pub scale: f64,
    pub transposed: bool,
}

impl LoraUpdate {
    /// The shape ΔW has in the base's layout.
    pub fn shape(&self) -> (usize, usize) {
        if self.transposed {
            (self.inp, self.out)
        } else {
            (self.out, self.inp)
        }
    }

    /// Adds ΔW[row, col .. col + values.len()] (in the base's layout) to `values`.
    pub fn add_row_segment(&self, row: usize, col: usize, values: &mut [f64]) {
        let (r, inp) = (self.rank, self.inp);
        if self.transposed {
            // ΔWᵀ[i, j] = scale · Σ_k B[j, k] · A[k, i]
            for (j, v) in (col..).zip(values.iter_mut()) {
                *v += self.scale
                    * (0..r)
                        .map(|k| self.b[j * r + k] * self.a[k * inp + row])
                        .sum::<f64>();
            }
        } else {
            let len = values.len();
            for k in 0..r {
                let coef = self.scale * self.b[row * r + k];
                let a = &self.a[k * inp + col..k * inp + col + len];
                for (v, &a) in values.iter_mut().zip(a) {
                    *v += coef * a;
                }
            }
        }
    }
}
