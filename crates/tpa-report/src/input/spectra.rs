//! The `--save-spectra` file of a result: every matrix's singular values,
//! float64, descending, one 1-D tensor per matrix.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Result, input};

/// A spectra file, memory-mapped, its header read once: only the spectra a
/// report draws are read.
pub struct SpectraFile {
    path: PathBuf,
    map: Mmap,
    /// Matrix name → byte range of its values in the file.
    ranges: HashMap<String, Range<usize>>,
}

impl SpectraFile {
    /// Opens and validates `path` (a safetensors file of 1-D float64 tensors).
    pub fn open(path: &Path) -> Result<SpectraFile> {
        let file = std::fs::File::open(path).map_err(|e| input(path, e))?;
        // SAFETY: the file is only read; a spectra file changed while a
        // report is drawn is the user's own race, as for any reader.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| input(path, e))?;
        let (header, metadata) = SafeTensors::read_metadata(&map).map_err(|e| input(path, e))?;
        let start = 8 + header;
        let mut ranges = HashMap::new();
        for (name, info) in metadata.tensors() {
            if info.dtype != Dtype::F64 || info.shape.len() != 1 {
                return Err(input(
                    path,
                    format!(
                        "tensor {name} is not a 1-D float64 spectrum; is this a --save-spectra file?"
                    ),
                ));
            }
            let (a, b) = info.data_offsets;
            if a > b || start + b > map.len() || b - a != info.shape[0] * 8 {
                return Err(input(path, format!("tensor {name} lies outside the file")));
            }
            ranges.insert(name, start + a..start + b);
        }
        Ok(SpectraFile {
            path: path.to_owned(),
            map,
            ranges,
        })
    }

    /// The singular values of matrix `name` (`NAME[e]` for a stacked expert),
    /// descending; `None` when the file does not hold it.
    pub fn get(&self, name: &str) -> Option<Vec<f64>> {
        let range = self.ranges.get(name)?.clone();
        Some(
            self.map[range]
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
