//! Which files of a repository to fetch.

use std::collections::BTreeSet;

use glob::{MatchOptions, Pattern};

use crate::error::HubError;
use crate::gguf::choose_gguf;
use crate::repo::{RemoteFile, RepoId};
use crate::size::human;

/// What tpa needs when no `--include` is given: safetensors weights and
/// their index, configs (including the quantization sidecars
/// `quantize_config.json` / `quant_config.json` of GPTQ and AWQ repos) and
/// tokenizers, the model card.
pub const DEFAULT_INCLUDE: &[&str] = &[
    "*.safetensors",
    "*.json",
    "tokenizer.model",
    "*.tiktoken",
    "vocab.*",
    "merges.txt",
    "README.md",
];

/// Weights in other formats: left out by default, and said so, because a
/// repository often carries the same weights two or three times over.
pub const OTHER_WEIGHTS: &[&str] = &[
    "*.bin",
    "*.pth",
    "*.pt",
    "*.h5",
    "*.msgpack",
    "*.onnx",
    "*.gguf",
    "*.ckpt",
];

/// Glob matching as huggingface_hub's fnmatch does it: `*` also crosses `/`.
const FNMATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// The files chosen, and the weights in other formats left out by default.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub files: Vec<RemoteFile>,
    pub skipped_weights: Vec<RemoteFile>,
    /// Safetensors files beside a shard index that the index does not name
    /// (Mistral's `consolidated.safetensors`: the same weights once more).
    pub skipped_copies: Vec<RemoteFile>,
}

impl Selection {
    /// Leaves out the safetensors files in `index_path`'s folder that the
    /// index does not name (`indexed`: repository paths); files in other
    /// folders are left as they are. The default selection does this so
    /// that a repository with two copies of its weights is fetched once.
    pub fn keep_one_copy(&mut self, index_path: &str, indexed: &BTreeSet<String>) {
        let folder = index_path.rsplit_once('/').map_or("", |(d, _)| d);
        let in_folder = |path: &str| path.rsplit_once('/').map_or("", |(d, _)| d) == folder;
        let (copies, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.files).into_iter().partition(|f| {
                f.path.ends_with(".safetensors") && in_folder(&f.path) && !indexed.contains(&f.path)
            });
        self.files = keep;
        self.skipped_copies.extend(copies);
    }
}

/// Parses glob patterns, naming the bad one.
pub fn patterns<S: AsRef<str>>(globs: &[S]) -> Result<Vec<Pattern>, glob::PatternError> {
    globs.iter().map(|g| Pattern::new(g.as_ref())).collect()
}

fn matches_any(patterns: &[Pattern], path: &str) -> bool {
    patterns.iter().any(|p| p.matches_with(path, FNMATCH))
}

/// The files of `all` to fetch: those matching `include` (or the default
/// selection when it is empty) and no `exclude` pattern; or, with `gguf`,
/// the GGUF model whose file name contains it ([`choose_gguf`]) and the
/// model card. A repository without safetensors weights gets its one GGUF
/// model by default (several are an error that lists them).
pub fn select(
    repo: &RepoId,
    all: &[RemoteFile],
    include: &[Pattern],
    exclude: &[Pattern],
    gguf: Option<&str>,
) -> Result<Selection, HubError> {
    let has = |suffix: &str| all.iter().any(|f| f.path.ends_with(suffix));
    let defaults;
    let mut chosen = Vec::new();
    let include = if gguf.is_some() || (include.is_empty() && !has(".safetensors") && has(".gguf"))
    {
        // The GGUF file holds the whole model: weights, config, tokenizer.
        chosen = choose_gguf(repo, all, gguf)?;
        defaults = patterns(&["README.md"]).unwrap_or_default();
        &defaults[..]
    } else if include.is_empty() {
        defaults = patterns(DEFAULT_INCLUDE).unwrap_or_default();
        if !has(".safetensors") {
            return Err(HubError::NoWeights {
                repo: repo.to_string(),
                found: listing(all),
            });
        }
        &defaults[..]
    } else {
        include
    };
    let other = patterns(OTHER_WEIGHTS).unwrap_or_default();
    let mut selection = Selection {
        files: Vec::new(),
        skipped_weights: Vec::new(),
        skipped_copies: Vec::new(),
    };
    for file in all {
        let wanted = chosen.contains(file) || matches_any(include, &file.path);
        if wanted && !matches_any(exclude, &file.path) {
            selection.files.push(file.clone());
        } else if matches_any(&other, &file.path)
            || (!chosen.is_empty() && file.path.ends_with(".safetensors"))
        {
            selection.skipped_weights.push(file.clone());
        }
    }
    if selection.files.is_empty() {
        return Err(HubError::NothingSelected {
            repo: repo.to_string(),
            found: listing(all),
        });
    }
    Ok(selection)
}

/// Up to ten file names with sizes, for messages.
fn listing(files: &[RemoteFile]) -> String {
    if files.is_empty() {
        return "no files".into();
    }
    let mut names: Vec<String> = files
        .iter()
        .take(10)
        .map(|f| format!("{} ({})", f.path, human(f.size)))
        .collect();
    if files.len() > 10 {
        names.push(format!("and {} more", files.len() - 10));
    }
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> RemoteFile {
        RemoteFile {
            path: path.into(),
            size: 10,
            git_oid: String::new(),
            sha256: None,
        }
    }

    fn paths(files: &[RemoteFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn the_default_takes_safetensors_configs_and_tokenizers_only() {
        let repo: RepoId = "o/m".parse().unwrap();
        let all: Vec<RemoteFile> = [
            ".gitattributes",
            "README.md",
            "config.json",
            "merges.txt",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "onnx/model.onnx",
            "pytorch_model.bin",
            "quantize_config.json",
            "tokenizer.json",
            "vocab.txt",
        ]
        .into_iter()
        .map(file)
        .collect();
        let s = select(&repo, &all, &[], &[], None).unwrap();
        assert_eq!(
            paths(&s.files),
            [
                "README.md",
                "config.json",
                "merges.txt",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json",
                // GPTQ/AWQ sidecar configs: tpa needs them to dequantize.
                "quantize_config.json",
                "tokenizer.json",
                "vocab.txt",
            ]
        );
        assert_eq!(
            paths(&s.skipped_weights),
            ["onnx/model.onnx", "pytorch_model.bin"]
        );

        let exclude = patterns(&["*.md", "model-00002*"]).unwrap();
        let s = select(&repo, &all, &[], &exclude, None).unwrap();
        assert!(!paths(&s.files).contains(&"README.md"));
        assert!(!paths(&s.files).contains(&"model-00002-of-00002.safetensors"));
    }

    #[test]
    fn beside_an_index_only_the_files_it_names_are_kept() {
        let repo: RepoId = "mistralai/m".parse().unwrap();
        let all: Vec<RemoteFile> = [
            "consolidated.safetensors",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "extra/adapter.safetensors",
        ]
        .into_iter()
        .map(file)
        .collect();
        let mut s = select(&repo, &all, &[], &[], None).unwrap();
        let indexed: BTreeSet<String> = [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ]
        .map(String::from)
        .into();
        s.keep_one_copy("model.safetensors.index.json", &indexed);
        assert_eq!(
            paths(&s.files),
            [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json",
                "extra/adapter.safetensors",
            ]
        );
        assert_eq!(paths(&s.skipped_copies), ["consolidated.safetensors"]);
    }

    #[test]
    fn without_safetensors_the_default_refuses_and_lists_what_there_is() {
        let repo: RepoId = "o/old".parse().unwrap();
        let all = vec![file("config.json"), file("pytorch_model.bin")];
        let err = select(&repo, &all, &[], &[], None).unwrap_err().to_string();
        assert!(
            err.contains("no safetensors or GGUF") && err.contains("pytorch_model.bin"),
            "{err}"
        );
        // Asked for explicitly, it is fetched.
        let include = patterns(&["*.bin"]).unwrap();
        let s = select(&repo, &all, &include, &[], None).unwrap();
        assert_eq!(paths(&s.files), ["pytorch_model.bin"]);
    }

    #[test]
    fn a_gguf_repository_gets_its_one_model_and_card_or_the_one_named() {
        let repo: RepoId = "o/m-GGUF".parse().unwrap();
        let one = vec![
            file("README.md"),
            file("config.json"),
            file("m-Q4_K_M.gguf"),
        ];
        let s = select(&repo, &one, &[], &[], None).unwrap();
        assert_eq!(paths(&s.files), ["README.md", "m-Q4_K_M.gguf"]);

        let both = vec![
            file("README.md"),
            file("model.safetensors"),
            file("m-Q4_K_M.gguf"),
            file("m-Q8_0.gguf"),
        ];
        // With safetensors there, they are the default and GGUF is left out.
        let s = select(&repo, &both, &[], &[], None).unwrap();
        assert_eq!(paths(&s.files), ["README.md", "model.safetensors"]);
        assert_eq!(paths(&s.skipped_weights), ["m-Q4_K_M.gguf", "m-Q8_0.gguf"]);
        // --gguf takes the one named instead, and lists the rest as skipped.
        let s = select(&repo, &both, &[], &[], Some("Q8_0")).unwrap();
        assert_eq!(paths(&s.files), ["README.md", "m-Q8_0.gguf"]);
        assert_eq!(
            paths(&s.skipped_weights),
            ["model.safetensors", "m-Q4_K_M.gguf"]
        );
    }
}
