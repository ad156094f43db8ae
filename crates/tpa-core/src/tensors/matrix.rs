//! The matrices a tensor holds: its 2-D view, or one matrix per expert.

use std::borrow::Cow;

use super::{DType, LoraUpdate, TensorView};
use crate::analyses::classify::{BlockType, classify};
use crate::error::Result;

/// A rows × cols matrix stored row-major somewhere inside a tensor; or the
/// difference of two such matrices (see [`MatrixView::minus`]), or one plus
/// a low-rank update (see [`MatrixView::plus`]).
#[derive(Clone, Copy)]
pub struct MatrixView<'m> {
    tensor: TensorView<'m>,
    /// First element of the matrix within the tensor.
    offset: usize,
    rows: usize,
    cols: usize,
    expert_index: Option<u32>,
    /// What is read on top of the stored values.
    adjustment: Option<Adjustment<'m>>,
    /// Which stored row each row of the view reads (`None`: the same one).
    row_order: Option<RowOrder>,
    /// Added to every stored value (see [`MatrixView::shifted`]).
    shift: f64,
}

/// A reordering of a matrix's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOrder {
    /// llama.cpp's `LlamaModel.permute` of `attn_q`/`attn_k`: within each
    /// head of `head_dim` rows, the stored row `2i + a` is Hugging Face's
    /// row `a · head_dim/2 + i` (the two rotary halves interleaved). The view
    /// reads the rows in Hugging Face's order.
    RotaryInterleaved { head_dim: usize },
}

impl RowOrder {
    /// The stored row that view row `row` reads.
    ///
    /// ```
    /// use tpa_core::tensors::RowOrder;
    /// let order = RowOrder::RotaryInterleaved { head_dim: 8 };
    /// let stored: Vec<usize> = (0..8).map(|r| order.stored_row(r)).collect();
    /// assert_eq!(stored, [0, 2, 4, 6, 1, 3, 5, 7]);
    /// assert_eq!(order.stored_row(8 + 5), 8 + 3);
    /// ```
    pub fn stored_row(self, row: usize) -> usize {
        match self {
            RowOrder::RotaryInterleaved { head_dim } => {
                let half = head_dim / 2;
                let (head, r) = (row / head_dim, row % head_dim);
                head * head_dim + 2 * (r % half) + r / half
            }
        }
    }

    /// Stored rows that view rows `row .. row + count` lie in: whole heads.
    fn stored_span(self, row: usize, count: usize) -> (usize, usize) {
        match self {
            RowOrder::RotaryInterleaved { head_dim } => {
                let first = row / head_dim * head_dim;
                let end = (row + count).div_ceil(head_dim) * head_dim;
                (first, end - first)
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Adjustment<'m> {
    /// A matrix subtracted element by element: its tensor, offset, row
    /// order and shift (same shape).
    Minus(TensorView<'m>, usize, Option<RowOrder>, f64),
    /// A low-rank update added (same shape).
    Plus(&'m LoraUpdate),
}

impl<'m> MatrixView<'m> {
    /// The whole tensor through its 2-D view (see [`TensorView::matrix_shape`]).
    pub fn whole(tensor: TensorView<'m>) -> MatrixView<'m> {
        let (rows, cols) = tensor.matrix_shape();
        MatrixView {
            tensor,
            offset: 0,
            rows,
            cols,
            expert_index: None,
            adjustment: None,
            row_order: None,
            shift: 0.0,
        }
    }

    /// The matrices a transformer analysis looks at: one per expert for a
    /// stacked 3-D expert tensor (`...experts...` of shape [E, out, in]),
    /// otherwise the tensor's 2-D view.
    ///
    /// ```no_run
    /// # use tpa_core::model::Model;
    /// # use tpa_core::tensors::MatrixView;
    /// # let model = Model::open("m.safetensors")?;
    /// // A tensor "model.layers.0.mlp.experts.down_proj" of shape [8, 4096, 14336]:
    /// let experts = MatrixView::split(model.tensor("model.layers.0.mlp.experts.down_proj")?);
    /// assert_eq!(experts.len(), 8);
    /// assert_eq!(experts[3].shape(), (4096, 14336));
    /// # Ok::<(), tpa_core::Error>(())
    /// ```
    pub fn split(tensor: TensorView<'m>) -> Vec<MatrixView<'m>> {
        match stacked_experts(tensor.name(), tensor.shape()) {
            Some((experts, rows, cols)) => (0..experts)
                .map(|e| MatrixView {
                    tensor,
                    offset: e * rows * cols,
                    rows,
                    cols,
                    expert_index: Some(e as u32),
                    adjustment: None,
                    row_order: None,
                    shift: 0.0,
                })
                .collect(),
            None => vec![MatrixView::whole(tensor)],
        }
    }

    /// The tensor's name, with `[e]` for expert e of a stacked tensor (as
    /// `TransformerRecord::matrix_name`).
    pub fn name(&self) -> String {
        match self.expert_index {
            Some(e) => format!("{}[{e}]", self.tensor.name()),
            None => self.tensor.name().to_owned(),
        }
    }

    /// The tensor the matrix lives in.
    pub fn tensor(&self) -> TensorView<'m> {
        self.tensor
    }

    /// (rows, cols).
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.rows * self.cols
    }

    /// The expert this matrix is, for a split stacked-expert tensor.
    pub fn expert_index(&self) -> Option<u32> {
        self.expert_index
    }

    /// First element within the tensor.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// This matrix minus `base`, element by element in f64 (`None` when the
    /// shapes differ): the ΔW between a fine-tuned weight and its base, which
    /// every spectral route then reads as it reads a stored matrix. The
    /// difference of two stored values (bf16, f16, f32, or dequantized) is
    /// exact in f64 unless their exponents lie 29 or more apart.
    ///
    /// ```no_run
    /// # use tpa_core::model::Model;
    /// # use tpa_core::tensors::MatrixView;
    /// let (base, tuned) = (Model::open("base")?, Model::open("tuned")?);
    /// let name = "model.layers.0.self_attn.q_proj.weight";
    /// let w = MatrixView::whole(base.tensor(name)?);
    /// let delta = MatrixView::whole(tuned.tensor(name)?).minus(w).unwrap();
    /// assert_eq!(delta.shape(), w.shape());
    /// # Ok::<(), tpa_core::Error>(())
    /// ```
    pub fn minus(self, base: MatrixView<'m>) -> Option<MatrixView<'m>> {
        (self.shape() == base.shape() && self.adjustment.is_none() && base.adjustment.is_none())
            .then_some(MatrixView {
                adjustment: Some(Adjustment::Minus(
                    base.tensor,
                    base.offset,
                    base.row_order,
                    base.shift,
                )),
                ..self
            })
    }

    /// This matrix plus `update`, read row by row without forming the
    /// update (`None` when the shapes differ): a base weight with a LoRA
    /// adapter merged, for the spectral routes.
    pub fn plus(self, update: &'m LoraUpdate) -> Option<MatrixView<'m>> {
        (self.shape() == update.shape() && self.adjustment.is_none()).then_some(MatrixView {
            adjustment: Some(Adjustment::Plus(update)),
            ..self
        })
    }

    /// This matrix with its rows read in `order` (`None` when the rows do
    /// not divide into `order`'s heads).
    pub fn reordered(self, order: RowOrder) -> Option<MatrixView<'m>> {
        let RowOrder::RotaryInterleaved { head_dim } = order;
        (head_dim >= 2 && head_dim % 2 == 0 && self.rows % head_dim == 0).then_some(MatrixView {
            row_order: Some(order),
            ..self
        })
    }

    /// This matrix with `by` added to every stored value in f64 (before
    /// any difference or update): Gemma's RMSNorm weights as Hugging Face
    /// stores them, read from a GGUF file whose converter stored `1 + w`.
    pub fn shifted(self, by: f64) -> MatrixView<'m> {
        MatrixView { shift: by, ..self }
    }

    /// Decodes `W[row, col .. col + out.len()]`.
    pub fn decode_row_segment(&self, row: usize, col: usize, out: &mut [f64]) -> Result<()> {
        debug_assert!(row < self.rows && col + out.len() <= self.cols);
        let stored_row = self.row_order.map_or(row, |o| o.stored_row(row));
        let at = stored_row * self.cols + col;
        self.tensor.decode_into(self.offset + at, out)?;
        if self.shift != 0.0 {
            out.iter_mut().for_each(|o| *o += self.shift);
        }
        if let Some(Adjustment::Plus(update)) = self.adjustment {
            update.add_row_segment(row, col, out);
        }
        if let Some(Adjustment::Minus(base, offset, order, shift)) = self.adjustment {
            let at = order.map_or(row, |o| o.stored_row(row)) * self.cols + col;
            // One buffer per thread: this runs for every row the spectral
            // routes read.
            thread_local! {
                static BASE: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
            }
            BASE.with_borrow_mut(|subtracted| -> Result<()> {
                subtracted.resize(out.len(), 0.0);
                base.decode_into(offset + at, subtracted)?;
                for (o, b) in out.iter_mut().zip(subtracted.iter()) {
                    *o -= b + shift;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The bytes of rows `row .. row + count` for backends that decode
    /// elsewhere: row-major, little endian, in [`Self::stored_dtype`]. A
    /// quantized weight is dequantized here, to f64 (dequantizing on the CPU
    /// before upload keeps one dequantizer for every backend).
    pub fn stored_rows(&self, row: usize, count: usize) -> Result<Cow<'m, [u8]>> {
        let start = self.offset + row * self.cols;
        let len = count * self.cols;
        if self.tensor.quantization().is_none()
            && self.adjustment.is_none()
            && self.row_order.is_none()
            && self.shift == 0.0
        {
            return self.tensor.stored_bytes(start, len).map(Cow::Borrowed);
        }
        // A difference or a merged update goes up as f64 too, computed here
        // like a dequantized weight.
        let mut values = vec![0.0f64; len];
        for r in 0..count {
            self.decode_row_segment(row + r, 0, &mut values[r * self.cols..(r + 1) * self.cols])?;
        }
        Ok(Cow::Owned(
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ))
    }

    /// The dtype of [`Self::stored_rows`]: the tensor's, or f64 for a
    /// quantized weight.
    pub fn stored_dtype(&self) -> DType {
        match (self.tensor.quantization(), self.adjustment, self.row_order) {
            (None, None, None) if self.shift == 0.0 => self.tensor.dtype(),
            _ => DType(safetensors::Dtype::F64),
        }
    }

    /// Releases the pages of rows `row .. row + count` (see [`TensorView::release`]).
    pub fn release_rows(&self, row: usize, count: usize) {
        let span =
            |order: Option<RowOrder>| order.map_or((row, count), |o| o.stored_span(row, count));
        let (first, n) = span(self.row_order);
        self.tensor
            .release(self.offset + first * self.cols, n * self.cols);
        if let Some(Adjustment::Minus(base, offset, order, _)) = self.adjustment {
            let (first, n) = span(order);
            base.release(offset + first * self.cols, n * self.cols);
        }
    }
}

impl std::fmt::Debug for MatrixView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixView")
            .field("tensor", &self.tensor.name())
            .field("expert_index", &self.expert_index)
            .field("shape", &(self.rows, self.cols))
            .finish()
    }
}

/// (experts, rows, cols) when a tensor called `name` of `shape` is a stack
/// of expert matrices ([E, out, in] named `...experts...`), which
/// [`MatrixView::split`] analyses one expert at a time; `None` otherwise.
///
/// ```
/// use tpa_core::tensors::stacked_experts;
/// assert_eq!(stacked_experts("model.layers.0.mlp.experts.down_proj", &[8, 4096, 14336]), Some((8, 4096, 14336)));
/// assert_eq!(stacked_experts("model.layers.0.self_attn.q_proj.weight", &[4096, 4096]), None);
/// ```
pub fn stacked_experts(name: &str, shape: &[usize]) -> Option<(usize, usize, usize)> {
    let placement = classify(name);
    match *shape {
        [experts, rows, cols]
            if placement.block_type == BlockType::MoeExpert && placement.expert_index.is_none() =>
        {
            Some((experts, rows, cols))
        }
        _ => None,
    }
}
