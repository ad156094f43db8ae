//! The GGUF header (v2 and v3): metadata and tensor infos, validated byte
//! by byte before anything is trusted. Layout: ggml's `docs/gguf.md` and
//! `src/gguf.cpp` (`gguf_init_from_reader`).

use std::ops::Range;

/// "GGUF" as the first four bytes.
pub(super) const MAGIC: &[u8; 4] = b"GGUF";
/// Alignment when `general.alignment` is absent (`GGUF_DEFAULT_ALIGNMENT`).
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// The spec's limit for keys; tpa applies it to tensor names too.
const MAX_NAME_BYTES: u64 = 65535;

/// A metadata value. Arrays stay in the file until asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i128),
    Float(f64),
    Bool(bool),
    String(String),
    /// `count` elements of value type `elem` at `bytes` of the file.
    Array {
        elem: u32,
        count: u64,
        bytes: Range<usize>,
    },
}

impl Value {
    /// The value as an integer, for any integer type.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One tensor info as stored.
#[derive(Debug, Clone)]
pub(super) struct TensorInfo {
    pub name: String,
    /// `ne`, fastest-varying dimension first.
    pub ne: Vec<u64>,
    pub ggml_type: u32,
    /// Relative to the data section.
    pub offset: u64,
}

/// A parsed header.
#[derive(Debug)]
pub(super) struct Header {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    /// Where the data section starts in the file.
    pub data_start: usize,
}

/// The value of metadata key `key` in `metadata`.
pub(super) fn lookup<'a>(metadata: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Reads little-endian fields, failing with the byte offset and what was
/// being read. `bytes` may be the first part of a file of `file_len`
/// bytes (a header read from the Hub): a read past `bytes` but within the
/// file sets `short` instead of calling the file truncated.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    file_len: u64,
    short: bool,
}

type Parse<T> = Result<T, String>;

/// Why a header did not parse.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Failure {
    /// The bytes given end before the header does; more are needed.
    Short,
    /// The header is invalid (the reason).
    Bad(String),
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], at: usize, file_len: u64) -> Cursor<'a> {
        Cursor {
            bytes,
            at,
            file_len,
            short: false,
        }
    }

    /// Of `n` items of at least `min_bytes` each, how many the bytes in
    /// memory after the cursor could hold: a safe reservation.
    fn room(&self, n: u64, min_bytes: usize) -> usize {
        (n as usize).min((self.bytes.len() - self.at) / min_bytes)
    }

    /// Bytes of the file after the cursor.
    fn left(&self) -> u64 {
        self.file_len.saturating_sub(self.at as u64)
    }

    fn take(&mut self, n: u64, what: &str) -> Parse<&'a [u8]> {
        let left = self.left();
        if n > left {
            return Err(format!(
                "{what} at byte {} needs {n} bytes, but the file has {left} left: \
                 it is truncated or damaged",
                self.at
            ));
        }
        if n > (self.bytes.len() - self.at) as u64 {
            self.short = true;
            return Err(format!("{what} lies past the bytes read"));
        }
        let slice = &self.bytes[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Parse<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Parse<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Parse<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count that must fit in what is left of the file at `min_bytes`
    /// per item (so that an absurd count fails at once, not after an
    /// allocation).
    fn count(&mut self, min_bytes: u64, what: &str) -> Parse<u64> {
        let at = self.at;
        let n = self.u64(what)?;
        let left = self.left();
        if n.saturating_mul(min_bytes) > left {
            return Err(format!(
                "{what} at byte {at} is {n}, more than the {left} bytes left could hold: \
                 the file is truncated or damaged"
            ));
        }
        Ok(n)
    }

    fn string(&mut self, max: u64, what: &str) -> Parse<String> {
        let at = self.at;
        let len = self.u64(what)?;
        if len > max {
            return Err(format!(
                "{what} at byte {at} claims {len} bytes (limit {max})"
            ));
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("{what} at byte {at} is not valid UTF-8"))
    }

    /// One value of type `kind`; arrays are checked and skipped.
    fn value(&mut self, kind: u32, key: &str) -> Parse<Value> {
        let what = format!("the value of {key}");
        Ok(match kind {
            0 => Value::Int(i128::from(self.array::<1>(&what)?[0])),
            1 => Value::Int(i128::from(i8::from_le_bytes(self.array(&what)?))),
            2 => Value::Int(i128::from(u16::from_le_bytes(self.array(&what)?))),
            3 => Value::Int(i128::from(i16::from_le_bytes(self.array(&what)?))),
            4 => Value::Int(i128::from(self.u32(&what)?)),
            5 => Value::Int(i128::from(i32::from_le_bytes(self.array(&what)?))),
            6 => Value::Float(f64::from(f32::from_le_bytes(self.array(&what)?))),
            7 => match self.array::<1>(&what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("{what} is a bool stored as {b}, not 0 or 1")),
            },
            8 => Value::String(self.string(u64::MAX, &what)?),
            9 => {
                let elem = self.u32(&what)?;
                let min = element_bytes(elem)
                    .ok_or_else(|| bad_type(elem, &format!("an element of {key}")))?;
                let count = self.count(min, &format!("the length of {key}"))?;
                let start = self.at;
                if elem == 8 {
                    for _ in 0..count {
                        let len = self.u64(&what)?;
                        self.take(len, &what)?;
                    }
                } else {
                    self.take(count * min, &what)?;
                }
                Value::Array {
                    elem,
                    count,
                    bytes: start..self.at,
                }
            }
            10 => Value::Int(i128::from(self.u64(&what)?)),
            11 => Value::Int(i128::from(i64::from_le_bytes(self.array(&what)?))),
            12 => Value::Float(f64::from_le_bytes(self.array(&what)?)),
            other => return Err(bad_type(other, &what)),
        })
    }
}

/// Bytes per element of an array of `kind` (the length field, for strings);
/// `None` for nested arrays (ggml's reader refuses them too) and unknown types.
fn element_bytes(kind: u32) -> Option<u64> {
    Some(match kind {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        _ => return None,
    })
}

fn bad_type(kind: u32, what: &str) -> String {
    if kind == 9 {
        format!("{what} is a nested array, which GGUF readers do not accept")
    } else {
        format!("{what} has unknown value type {kind}")
    }
}

/// Parses and checks the header of a whole GGUF file `bytes`. Tensor types
/// and extents are checked by the caller, which knows the types.
pub(super) fn parse(bytes: &[u8]) -> Parse<Header> {
    parse_prefix(bytes, bytes.len() as u64).map_err(|failure| match failure {
        Failure::Bad(reason) => reason,
        Failure::Short => "it is truncated".into(),
    })
}

/// [`parse`] on the first `bytes` of a file of `file_len` bytes:
/// [`Failure::Short`] when the header goes on past them.
pub(super) fn parse_prefix(bytes: &[u8], file_len: u64) -> Result<Header, Failure> {
    let mut cur = Cursor::new(bytes, 0, file_len);
    parse_with(&mut cur).map_err(|reason| {
        if cur.short {
            Failure::Short
        } else {
            Failure::Bad(reason)
        }
    })
}

fn parse_with(cur: &mut Cursor<'_>) -> Parse<Header> {
    let magic = cur.array::<4>("the magic")?;
    if &magic != MAGIC {
        return Err(format!(
            "it does not start with the GGUF magic (found bytes {magic:02x?})"
        ));
    }
    let version = cur.u32("the version")?;
    if version & 0xFFFF == 0 && version != 0 {
        return Err("it is a big-endian GGUF file, which tpa does not read \
                    (convert it with gguf-py's gguf_convert_endian.py)"
            .into());
    }
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (tpa reads versions 2 and 3)"
        ));
    }
    // A tensor info takes at least 8 + 4 + 4 + 8 bytes; a key-value 8 + 4 + 1.
    let n_tensors = cur.count(24, "the tensor count")?;
    let n_kv = cur.count(13, "the metadata count")?;
    // Counts are checked against the file's length, which for a header read
    // from the Hub is not in memory: reserve only what the bytes read hold.
    let mut metadata: Vec<(String, Value)> = Vec::with_capacity(cur.room(n_kv, 13));
    for i in 0..n_kv {
        let key = cur.string(MAX_NAME_BYTES, &format!("metadata key {i}"))?;
        if key.is_empty() {
            return Err(format!("metadata key {i} is empty"));
        }
        if metadata.iter().any(|(k, _)| *k == key) {
            return Err(format!("metadata key {key} appears twice"));
        }
        let kind = cur.u32(&format!("the type of {key}"))?;
        let value = cur.value(kind, &key)?;
        metadata.push((key, value));
    }
    let alignment = match lookup(&metadata, "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::Int(a)) if *a > 0 && (*a as u64).is_power_of_two() && *a <= 1 << 30 => {
            *a as u64
        }
        Some(v) => {
            return Err(format!(
                "general.alignment is {v:?}; it must be a power of two"
            ));
        }
    };
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(cur.room(n_tensors, 24));
    let mut names = std::collections::HashSet::new();
    for i in 0..n_tensors {
        let name = cur.string(MAX_NAME_BYTES, &format!("the name of tensor {i}"))?;
        let n_dims = cur.u32(&format!("the dimension count of {name}"))?;
        if n_dims > MAX_DIMS {
            return Err(format!(
                "tensor {name} has {n_dims} dimensions (GGUF allows at most {MAX_DIMS})"
            ));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            ne.push(cur.u64(&format!("the shape of {name}"))?);
        }
        let ggml_type = cur.u32(&format!("the type of {name}"))?;
        let offset = cur.u64(&format!("the offset of {name}"))?;
        if offset % alignment != 0 {
            return Err(format!(
                "tensor {name}: offset {offset} is not a multiple of the alignment {alignment}"
            ));
        }
        if !names.insert(name.clone()) {
            return Err(format!("tensor {name} appears twice"));
        }
        tensors.push(TensorInfo {
            name,
            ne,
            ggml_type,
            offset,
        });
    }
    let end = cur.at as u64;
    let data_start = end.div_ceil(alignment) * alignment;
    if data_start > cur.file_len && n_tensors > 0 {
        return Err(format!(
            "the data section would start at byte {data_start}, past the end of the \
             file ({} bytes): it is truncated",
            cur.file_len
        ));
    }
    Ok(Header {
        version,
        metadata,
        tensors,
        data_start: data_start.min(cur.file_len) as usize,
    })
}

/// The strings of an array value (`tokenizer.ggml.tokens`), read from the
/// file `bytes` it was parsed from; invalid UTF-8 is replaced, as a token
/// may be a partial character.
pub(crate) fn strings(bytes: &[u8], value: &Value) -> Option<Vec<String>> {
    let Value::Array {
        elem: 8,
        count,
        bytes: range,
    } = value
    else {
        return None;
    };
    let mut cur = Cursor::new(&bytes[..range.end], range.start, range.end as u64);
    let mut out = Vec::with_capacity(*count as usize);
    for _ in 0..*count {
        let len = cur.u64("a string").ok()?;
        out.push(String::from_utf8_lossy(cur.take(len, "a string").ok()?).into_owned());
    }
    Some(out)
}
