//! Token ids as text, through the model's own `tokenizer.json`.

use std::path::Path;

use tokenizers::Tokenizer;

/// Decodes token ids with the model's tokenizer; without one, ids stay ids.
pub struct TokenNames {
    tokenizer: Option<Tokenizer>,
}

impl TokenNames {
    /// Token ids shown as ids.
    pub fn ids_only() -> TokenNames {
        TokenNames { tokenizer: None }
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
                },
                None,
            ),
            Err(e) => (
                TokenNames::ids_only(),
                Some(format!("{}: {e}; showing token ids", path.display())),
            ),
        }
    }

    /// Whether a tokenizer is loaded.
    pub fn has_tokenizer(&self) -> bool {
        self.tokenizer.is_some()
    }

    /// The text of token `id`: what the tokenizer's decoder makes of it
    /// alone (so byte-level BPE pieces read as text), or the raw vocabulary
    /// entry when decoding gives nothing, or the id.
    pub fn text(&self, id: u32) -> String {
        let Some(t) = &self.tokenizer else {
            return id.to_string();
        };
        match t.decode(&[id], false) {
            Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
            _ => t.id_to_token(id).unwrap_or_else(|| id.to_string()),
        }
    }
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
