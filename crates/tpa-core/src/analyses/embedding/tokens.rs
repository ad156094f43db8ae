//! Token ids as text, through the model's own `tokenizer.json`, or a GGUF
//! file's `tokenizer.ggml.tokens`.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::model::Model;

/// Decodes token ids with the model's tokenizer; without one, ids stay ids.
pub struct TokenNames {
    tokenizer: Option<Tokenizer>,
    /// A GGUF vocabulary, each entry already turned into text.
    vocabulary: Option<Vec<String>>,
}

impl TokenNames {
    /// Token ids shown as ids.
    pub fn ids_only() -> TokenNames {
        TokenNames {
            tokenizer: None,
            vocabulary: None,
        }
    }

    /// The tokens of `model`: a GGUF file's vocabulary, else [`Self::load`]
    /// on its directory.
    pub fn of_model(model: &Model) -> (TokenNames, Option<String>) {
        let Some(metadata) = model.gguf() else {
            return TokenNames::load(model.dir());
        };
        let Some(tokens) = &metadata.tokens else {
            return (
                TokenNames::ids_only(),
                Some("the GGUF file has no tokenizer.ggml.tokens; showing token ids".into()),
            );
        };
        let byte_level = metadata
            .get("tokenizer.ggml.model")
            .and_then(|v| v.as_str())
            == Some("gpt2");
        let vocabulary = tokens
            .iter()
            .map(|t| {
                if byte_level {
                    byte_level_text(t)
                } else {
                    t.replace('\u{2581}', " ")
                }
            })
            .collect();
        (
            TokenNames {
                tokenizer: None,
                vocabulary: Some(vocabulary),
            },
            None,
        )
    }

    /// Reads `dir/tokenizer.json` when it exists. A tokenizer that does not
    /// load is reported as an error message, not a failure of the analysis.
    pub fn load(dir: &Path) -> (TokenNames, Option<String>) {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return (TokenNames::ids_only(), None);
        }
        match Tokenizer::from_file(&path) {
            Ok(tokenizer) => (
                TokenNames {
                    tokenizer: Some(tokenizer),
                    vocabulary: None,
                },
                None,
            ),
            Err(e) => (
                TokenNames::ids_only(),
                Some(format!("{}: {e}; showing token ids", path.display())),
            ),
        }
    }

    /// Whether a tokenizer (or a GGUF vocabulary) is loaded.
    pub fn has_tokenizer(&self) -> bool {
        self.tokenizer.is_some() || self.vocabulary.is_some()
    }

    /// The text of token `id`: what the tokenizer's decoder makes of it
    /// alone (so byte-level BPE pieces read as text), or the raw vocabulary
    /// entry when decoding gives nothing, or the id.
    pub fn text(&self, id: u32) -> String {
        if let Some(vocabulary) = &self.vocabulary {
            return match vocabulary.get(id as usize).map(|t| t.trim()) {
                Some(text) if !text.is_empty() => text.to_owned(),
                _ => id.to_string(),
            };
        }
        let Some(t) = &self.tokenizer else {
            return id.to_string();
        };
        match t.decode(&[id], false) {
            Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
            _ => t.id_to_token(id).unwrap_or_else(|| id.to_string()),
        }
    }
}

/// A GPT-2 byte-level BPE token as text: each character stands for one
/// byte (printable bytes for themselves, the others for 256 + their rank
/// among the unprintable ones, as GPT-2's `bytes_to_unicode`).
fn byte_level_text(token: &str) -> String {
    fn printable(b: u32) -> bool {
        (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b)
    }
    // Built once for a whole vocabulary, not once per token.
    static UNPRINTABLE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        (0..=255u32)
            .filter(|&b| !printable(b))
            .map(|b| b as u8)
            .collect()
    });
    let unprintable = &*UNPRINTABLE;
    let bytes: Vec<u8> = token
        .chars()
        .filter_map(|c| {
            let c = c as u32;
            if c < 256 && printable(c) {
                Some(c as u8)
            } else {
                c.checked_sub(256)
                    .and_then(|n| unprintable.get(n as usize).copied())
            }
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether a decoded token carries meaning for a reader: it has a letter or
/// digit and is not a special or placeholder token like `[CLS]`,
/// `[unused17]` or `<s>`.
///
/// ```
/// use tpa_core::analyses::embedding::tokens::is_meaningful;
/// assert!(is_meaningful("hello") && is_meaningful("##ing") && is_meaningful("42"));
/// assert!(!is_meaningful("[unused17]") && !is_meaningful("<s>") && !is_meaningful("!"));
/// ```
pub fn is_meaningful(text: &str) -> bool {
    let t = text.trim();
    let bracketed =
        (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('<') && t.ends_with('>'));
    !bracketed && t.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_level_tokens_read_as_text() {
        assert_eq!(super::byte_level_text("\u{120}hello"), " hello");
        assert_eq!(super::byte_level_text("\u{10a}"), "\n");
        assert_eq!(super::byte_level_text("caf\u{c3}\u{a9}"), "café");
    }
}
