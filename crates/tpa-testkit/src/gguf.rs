//! A minimal GGUF v3 writer, for fixtures that the `gguf` package cannot
//! make: corrupt files (every field can be set to a lie) and large
//! generated models for benchmarks. Layout: ggml's `docs/gguf.md`.

/// A metadata value.
#[derive(Debug, Clone)]
pub enum GgufValue {
    U32(u32),
    U64(u64),
    F32(f32),
    Bool(bool),
    String(String),
    Strings(Vec<String>),
}

impl GgufValue {
    fn write(&self, out: &mut Vec<u8>) {
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        };
        match self {
            GgufValue::U32(v) => {
                out.extend(4u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            GgufValue::U64(v) => {
                out.extend(10u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            GgufValue::F32(v) => {
                out.extend(6u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            GgufValue::Bool(v) => {
                out.extend(7u32.to_le_bytes());
                out.push(u8::from(*v));
            }
            GgufValue::String(s) => {
                out.extend(8u32.to_le_bytes());
                string(out, s);
            }
            GgufValue::Strings(items) => {
                out.extend(9u32.to_le_bytes());
                out.extend(8u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for s in items {
                    string(out, s);
                }
            }
        }
    }
}

/// One tensor: `ne` (fastest dimension first, as GGUF stores it), its ggml
/// type id and its stored bytes. `offset` overrides where the header says
/// it is (for corrupt files); by default tensors follow each other, aligned.
#[derive(Debug, Clone)]
pub struct GgufTensor {
    pub name: String,
    pub ne: Vec<u64>,
    pub ggml_type: u32,
    pub data: Vec<u8>,
    pub offset: Option<u64>,
}

impl GgufTensor {
    /// An f32 tensor of PyTorch shape `[rows, cols]` (ne = [cols, rows]).
    pub fn f32(name: &str, rows: usize, cols: usize, values: &[f32]) -> GgufTensor {
        assert_eq!(values.len(), rows * cols);
        GgufTensor {
            name: name.into(),
            ne: vec![cols as u64, rows as u64],
            ggml_type: 0,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            offset: None,
        }
    }
}

/// The bytes of a GGUF v3 file with `metadata` and `tensors`, aligned to
/// `alignment` (GGUF's default is 32).
pub fn gguf_bytes(
    metadata: &[(&str, GgufValue)],
    tensors: &[GgufTensor],
    alignment: u64,
) -> Vec<u8> {
    let pad = |n: u64| n.div_ceil(alignment) * alignment;
    let mut out = Vec::new();
    out.extend(b"GGUF");
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        out.extend((key.len() as u64).to_le_bytes());
        out.extend(key.as_bytes());
        value.write(&mut out);
    }
    let mut at = 0u64;
    for t in tensors {
        out.extend((t.name.len() as u64).to_le_bytes());
        out.extend(t.name.as_bytes());
        out.extend((t.ne.len() as u32).to_le_bytes());
        for n in &t.ne {
            out.extend(n.to_le_bytes());
        }
        out.extend(t.ggml_type.to_le_bytes());
        out.extend(t.offset.unwrap_or(at).to_le_bytes());
        at += pad(t.data.len() as u64);
    }
    out.resize(pad(out.len() as u64) as usize, 0);
    for t in tensors {
        out.extend(&t.data);
        out.resize(pad(out.len() as u64) as usize, 0);
    }
    out
}
