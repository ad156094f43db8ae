//! A digest of a tensor's stored bytes, so that identical tensors (tied
//! embeddings saved twice, a layer copied into another) can be found from the
//! results alone, without the model.
//!
//! The statistics pass already reads every byte in fixed chunks of
//! 2^20 elements; each chunk is hashed with xxh3-128 as it is decoded, and the
//! tensor's digest is the xxh3-128 of the chunk digests (16 bytes each,
//! little-endian) in order. The result depends only on the bytes, not on the
//! thread count. xxh3 is not a cryptographic hash: it finds copies, it does
//! not prove that a file is authentic (tpa-download checks sha256 for that).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

/// 128 bits that equal another tensor's only if their stored bytes (almost
/// surely) do. Written as 32 lower-case hex digits.
///
/// ```
/// use tpa_core::analyses::digest::Digest;
/// let d: Digest = "000000000000000000000000000000ff".parse().unwrap();
/// assert_eq!(d.to_string(), "000000000000000000000000000000ff");
/// assert!("xyz".parse::<Digest>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub u128);

impl Digest {
    /// Combines the digests of consecutive chunks, in order.
    pub(crate) fn of_chunks(chunks: impl IntoIterator<Item = u128>) -> Digest {
        let bytes: Vec<u8> = chunks.into_iter().flat_map(u128::to_le_bytes).collect();
        Digest(xxh3_128(&bytes))
    }
}

/// The running hash of one chunk.
pub(crate) struct ChunkHasher(Xxh3);

impl ChunkHasher {
    pub(crate) fn new() -> ChunkHasher {
        ChunkHasher(Xxh3::new())
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub(crate) fn finish(&self) -> u128 {
        self.0.digest128()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Digest, String> {
        if s.len() != 32 {
            return Err(format!("a digest has 32 hex digits, not {:?}", s));
        }
        u128::from_str_radix(s, 16)
            .map(Digest)
            .map_err(|e| format!("{s:?} is no digest: {e}"))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_a_chunk_equals_hashing_it_whole() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = ChunkHasher::new();
        for part in bytes.chunks(999) {
            h.update(part);
        }
        assert_eq!(h.finish(), xxh3_128(&bytes));
    }

    #[test]
    fn order_of_chunks_matters() {
        assert_ne!(Digest::of_chunks([1, 2]), Digest::of_chunks([2, 1]));
        assert_eq!(Digest::of_chunks([1, 2]), Digest::of_chunks([1, 2]));
    }

    #[test]
    fn round_trips_through_json() {
        let d = Digest(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"0123456789abcdef0011223344556677\"");
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }
}
