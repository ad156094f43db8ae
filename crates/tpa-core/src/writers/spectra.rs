//! Singular values as a safetensors file: one float64 1-D tensor per matrix.

use std::borrow::Cow;
use std::path::Path;

use safetensors::{Dtype, View};

use super::{output_error, write_atomically};
use crate::error::Result;

struct Vector {
    bytes: Vec<u8>,
    shape: [usize; 1],
}

impl View for &Vector {
    fn dtype(&self) -> Dtype {
        Dtype::F64
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `spectra` (name, values) to `path` atomically, readable with
/// `safetensors.numpy.load_file` or `safetensors.torch.load_file`.
pub fn write_spectra(path: &Path, spectra: &[(String, Vec<f64>)]) -> Result<()> {
    let vectors: Vec<(&str, Vector)> = spectra
        .iter()
        .map(|(name, values)| {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (
                name.as_str(),
                Vector {
                    bytes,
                    shape: [values.len()],
                },
            )
        })
        .collect();
    let metadata = Some(std::collections::HashMap::from([(
        "content".to_owned(),
        "singular values, descending, float64 (tpa-transformer)".to_owned(),
    )]));
    let bytes = safetensors::serialize(vectors.iter().map(|(n, v)| (*n, v)), metadata)
        .map_err(|e| output_error(path, e))?;
    write_atomically(path, |out| out.write_all(&bytes))
}
