//! A matrix as a stream of f64 row blocks of its tall orientation.
//!
//! Every spectral route works on the tall orientation T of the matrix W
//! (T = W when rows ≥ cols, else Wᵀ), whose singular values are W's. T is
//! visited in blocks of consecutive rows, each decoded straight from the
//! stored dtype, so no f64 copy of the whole matrix ever exists.

use faer::{Mat, MatRef};

use crate::error::Result;
use crate::tensors::MatrixView;

/// Target size of one decoded block, in f64 elements (16 MiB): large enough
/// for efficient matrix products, small next to the n×n Gram matrix.
const BLOCK_ELEMENTS: usize = 2 << 20;

/// The order of the Gram matrix: min(rows, cols).
pub(crate) fn gram_order(matrix: &MatrixView<'_>) -> usize {
    let (rows, cols) = matrix.shape();
    rows.min(cols)
}

/// Rows of T per block for a matrix whose small side is `n`.
pub(crate) fn block_rows(n: usize) -> usize {
    (BLOCK_ELEMENTS / n.max(1)).clamp(64, 8192)
}

/// Calls `visit` with consecutive row blocks of T (each `b × n`, the last
/// possibly shorter), in order, releasing the matrix's file pages as it goes.
pub(crate) fn for_each_block(
    matrix: &MatrixView<'_>,
    mut visit: impl FnMut(MatRef<'_, f64>) -> Result<()>,
) -> Result<()> {
    let (rows, cols) = matrix.shape();
    let n = rows.min(cols);
    let long = rows.max(cols);
    if n == 0 {
        return Ok(());
    }
    let b = block_rows(n).min(long);
    if rows >= cols {
        // Rows of W are contiguous: decode each into a column of an n × b
        // column-major buffer, whose transpose is the b × n block.
        let mut buffer = Mat::<f64>::zeros(n, b);
        for start in (0..rows).step_by(b) {
            let count = b.min(rows - start);
            for j in 0..count {
                matrix.decode_row_segment(start + j, 0, column(&mut buffer, j))?;
            }
            visit(buffer.as_ref().subcols(0, count).transpose())?;
            matrix.release_rows(start, count);
        }
    } else {
        // Rows of T are columns of W: decode the segment W[i, k .. k+b] of
        // every row i into column i of a b × n column-major block.
        let mut buffer = Mat::<f64>::zeros(b, n);
        for start in (0..cols).step_by(b) {
            let count = b.min(cols - start);
            for i in 0..n {
                matrix.decode_row_segment(i, start, &mut column(&mut buffer, i)[..count])?;
            }
            visit(buffer.as_ref().subrows(0, count))?;
        }
        matrix.release_rows(0, rows);
    }
    Ok(())
}

/// Column `j` of a column-major matrix as a mutable slice.
fn column(m: &mut Mat<f64>, j: usize) -> &mut [f64] {
    m.col_mut(j)
        .try_as_col_major_mut()
        .expect("columns of an owned Mat are contiguous")
        .as_slice_mut()
}
