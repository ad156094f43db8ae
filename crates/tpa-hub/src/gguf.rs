//! GGUF models in a repository listing. A GGUF repository usually holds one
//! model in many quantizations (`M-Q4_K_M.gguf`, `M-Q8_0.gguf`, ...), some
//! split into `M-Q8_0-00001-of-00003.gguf` sets, so tpa fetches one model
//! and the user names it.

use crate::error::HubError;
use crate::repo::{RemoteFile, RepoId};
use crate::size::human;

/// One GGUF model of a listing: a single file, or a split set in order.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufModel<'a> {
    /// The file's path, or `prefix-*-of-0000N.gguf` for a split set.
    pub name: String,
    pub files: Vec<&'a RemoteFile>,
    /// For a split set: its file count (`files` may lack some).
    pub count: Option<u32>,
}

impl GgufModel<'_> {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.name, human(self.bytes()))
    }
}

/// `(prefix, number, count)` of a split file path `prefix-00002-of-00003.gguf`
/// (llama.cpp's `gguf-split` names). tpa-core's reader parses the same names
/// for local files; this crate stays free of the analysis crate.
fn split_name(path: &str) -> Option<(&str, u32, u32)> {
    let stem = path.strip_suffix(".gguf")?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, number) = rest.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    (digits(number) && digits(count))
        .then(|| Some((prefix, number.parse().ok()?, count.parse().ok()?)))?
}

/// The GGUF models of `all`, by name.
pub fn gguf_models(all: &[RemoteFile]) -> Vec<GgufModel<'_>> {
    let mut models: Vec<GgufModel<'_>> = Vec::new();
    for file in all.iter().filter(|f| f.path.ends_with(".gguf")) {
        let Some((prefix, _, count)) = split_name(&file.path) else {
            models.push(GgufModel {
                name: file.path.clone(),
                files: vec![file],
                count: None,
            });
            continue;
        };
        let name = format!("{prefix}-*-of-{count:05}.gguf");
        match models.iter_mut().find(|m| m.name == name) {
            Some(model) => model.files.push(file),
            None => models.push(GgufModel {
                name,
                files: vec![file],
                count: Some(count),
            }),
        }
    }
    for model in &mut models {
        model.files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    models.sort_by(|a, b| a.name.cmp(&b.name));
    models
}

/// The files of the one GGUF model of `all` whose name contains `wanted`
/// (case-insensitively; an exact path wins), or of the only one when
/// `wanted` is `None`. Several candidates, none, or a split set the listing
/// lacks files of are errors that list the models.
pub fn choose_gguf(
    repo: &RepoId,
    all: &[RemoteFile],
    wanted: Option<&str>,
) -> Result<Vec<RemoteFile>, HubError> {
    let models = gguf_models(all);
    let listing = |models: &[&GgufModel<'_>]| {
        models
            .iter()
            .map(|m| m.describe())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all_models: Vec<&GgufModel<'_>> = models.iter().collect();
    let matching: Vec<&GgufModel<'_>> = match wanted {
        None => all_models.clone(),
        Some(name) => match all_models.iter().find(|m| m.name == name) {
            Some(exact) => vec![*exact],
            None => {
                let name = name.to_lowercase();
                all_models
                    .iter()
                    .filter(|m| m.name.to_lowercase().contains(&name))
                    .copied()
                    .collect()
            }
        },
    };
    let model = match matching[..] {
        [model] => model,
        [] => {
            return Err(HubError::NoGgufMatch {
                repo: repo.to_string(),
                wanted: wanted.unwrap_or_default().to_owned(),
                models: if models.is_empty() {
                    "no GGUF files".into()
                } else {
                    listing(&all_models)
                },
            });
        }
        _ => {
            return Err(HubError::SeveralGguf {
                repo: repo.to_string(),
                models: listing(&matching),
            });
        }
    };
    if let Some(count) = model.count {
        let prefix = model
            .name
            .trim_end_matches(&format!("-*-of-{count:05}.gguf"));
        if let Some(missing) = (1..=count)
            .map(|i| format!("{prefix}-{i:05}-of-{count:05}.gguf"))
            .find(|path| !model.files.iter().any(|f| &f.path == path))
        {
            return Err(HubError::IncompleteGguf {
                repo: repo.to_string(),
                model: model.name.clone(),
                missing,
            });
        }
    }
    Ok(model.files.iter().map(|&f| f.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(paths: &[&str]) -> Vec<RemoteFile> {
        paths
            .iter()
            .map(|p| RemoteFile {
                path: (*p).into(),
                size: 1 << 30,
                git_oid: String::new(),
                sha256: None,
            })
            .collect()
    }

    fn chosen(all: &[RemoteFile], wanted: Option<&str>) -> Result<Vec<String>, String> {
        let repo: RepoId = "o/m-GGUF".parse().unwrap();
        choose_gguf(&repo, all, wanted)
            .map(|files| files.into_iter().map(|f| f.path).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_model_is_chosen_by_a_part_of_its_name_and_split_sets_come_whole() {
        let all = listing(&[
            "README.md",
            "m-Q4_K_M.gguf",
            "m-Q4_K_S.gguf",
            "Q8_0/m-Q8_0-00002-of-00002.gguf",
            "Q8_0/m-Q8_0-00001-of-00002.gguf",
            "mmproj-F16.gguf",
        ]);
        assert_eq!(chosen(&all, Some("q4_k_m")).unwrap(), ["m-Q4_K_M.gguf"]);
        assert_eq!(
            chosen(&all, Some("Q8_0")).unwrap(),
            [
                "Q8_0/m-Q8_0-00001-of-00002.gguf",
                "Q8_0/m-Q8_0-00002-of-00002.gguf"
            ]
        );
        let several = chosen(&all, Some("Q4_K")).unwrap_err();
        assert!(
            several.contains("m-Q4_K_M.gguf (1.0 GiB), m-Q4_K_S.gguf")
                && !several.contains("Q8_0")
                && several.contains("--gguf"),
            "{several}"
        );
        let none = chosen(&all, Some("IQ2")).unwrap_err();
        assert!(
            none.contains("`IQ2`") && none.contains("Q8_0/m-Q8_0-*-of-00002.gguf (2.0 GiB)"),
            "{none}"
        );
        assert!(
            chosen(&all, None)
                .unwrap_err()
                .contains("several GGUF models")
        );
        assert_eq!(
            chosen(&listing(&["a.gguf", "b.txt"]), None).unwrap(),
            ["a.gguf"]
        );
    }

    #[test]
    fn a_split_set_missing_a_file_is_refused_naming_it() {
        let all = listing(&["m-00001-of-00003.gguf", "m-00003-of-00003.gguf"]);
        let err = chosen(&all, None).unwrap_err();
        assert!(err.contains("m-00002-of-00003.gguf"), "{err}");
    }
}
