//! `--model-path` naming a folder of models (`data/models`, as the original
//! README runs it): every model below it, in sorted order, into one output.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use tpa_core::model::models_below;

use crate::common::ModelArgs;

/// One model of a folder of models.
pub struct FolderModel {
    pub dir: PathBuf,
    /// Its path below the folder, `ORG/NAME` as tpa-download lays it out:
    /// the rows' model_id.
    pub id: String,
}

/// The models below `--model-path` when it is a folder of models rather
/// than a model; `None` otherwise.
pub fn models_in(args: &ModelArgs) -> Result<Option<Vec<FolderModel>>> {
    let Some(root) = &args.model_path else {
        return Ok(None);
    };
    if !root.is_dir() {
        return Ok(None);
    }
    let found = models_below(root);
    if found.is_empty() {
        return Ok(None);
    }
    if args.model_id.is_some() {
        bail!(
            "{} holds {} models, each labelled by its folder (ORG/NAME); --model-id labels one \
             model: give --model-path one of them",
            root.display(),
            found.len()
        );
    }
    Ok(Some(
        found
            .into_iter()
            .map(|dir| {
                let id = dir
                    .strip_prefix(root)
                    .unwrap_or(&dir)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                FolderModel { dir, id }
            })
            .collect(),
    ))
}

/// What a folder run cannot do, refused before any work.
pub fn refuse(sharded: bool, report: bool, spectra: bool) -> Result<()> {
    let what = if sharded {
        "--shard"
    } else if report {
        "--report"
    } else if spectra {
        "--save-spectra"
    } else {
        return Ok(());
    };
    bail!(
        "{what} works on one model; --model-path names a folder of models: run once per model \
         (give --model-path one of them)"
    )
}

/// Says which models will be analysed.
pub fn announce(root: &Path, models: &[FolderModel], quiet: bool) {
    if !quiet {
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
        let noun = if models.len() == 1 { "model" } else { "models" };
        eprintln!(
            "{} {noun} below {}: {}",
            models.len(),
            root.display(),
            ids.join(", ")
        );
    }
}

impl FolderModel {
    /// The model flags for this model alone.
    pub fn args(&self, all: &ModelArgs) -> ModelArgs {
        ModelArgs {
            model_path: Some(self.dir.clone()),
            model_id: Some(self.id.clone()),
            revision: all.revision.clone(),
            raw: all.raw,
        }
    }

    /// Where this model's finished rows are journaled: beside the output,
    /// one journal per model, so that --resume skips the models done.
    pub fn journal_path(&self, out: &Path) -> PathBuf {
        let mut name = out.as_os_str().to_owned();
        name.push(format!(".partial.{}.jsonl", self.id.replace('/', "--")));
        PathBuf::from(name)
    }
}
