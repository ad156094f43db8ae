//! The two metadata calls of a snapshot: revision → commit, commit → files.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::client::{Client, Target, header, next_link};
use crate::error::HubError;
use crate::repo::{RemoteFile, RepoId, TreeEntry, encode_path, encode_segment};

/// Responses are small JSON, but a tree page of a large repository can pass
/// ureq's 10 MB default.
const JSON_LIMIT: u64 = 256 << 20;

#[derive(Deserialize)]
struct RevisionInfo {
    sha: String,
}

/// The commit sha that `revision` (branch, tag or sha) names now. Every file
/// is then fetched at this sha, so a branch that moves during the download
/// cannot mix two commits.
pub fn resolve_commit(
    client: &Client,
    repo: &RepoId,
    revision: &str,
    on_retry: &dyn Fn(&str, Duration),
) -> Result<String, HubError> {
    let url = format!(
        "{}/api/models/{repo}/revision/{}",
        client.endpoint(),
        encode_segment(revision)
    );
    let target = Target {
        repo,
        revision,
        path: None,
    };
    let (info, _): (RevisionInfo, _) = get_json(client, &url, target, on_retry)?;
    let sha = info.sha;
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HubError::BadResponse {
            what: target.describe(),
            url,
            reason: format!("`{sha}` is not a commit sha"),
        });
    }
    Ok(sha)
}

/// Every file of `repo` at `commit`, following the listing's pages.
pub fn list_files(
    client: &Client,
    repo: &RepoId,
    commit: &str,
    on_retry: &dyn Fn(&str, Duration),
) -> Result<Vec<RemoteFile>, HubError> {
    let target = Target {
        repo,
        revision: commit,
        path: None,
    };
    let mut next = Some(format!(
        "{}/api/models/{repo}/tree/{commit}?recursive=true",
        client.endpoint()
    ));
    let mut files = Vec::new();
    while let Some(url) = next.take() {
        let (page, link): (Vec<TreeEntry>, _) = get_json(client, &url, target, on_retry)?;
        files.extend(page.into_iter().filter_map(TreeEntry::into_file));
        next = link.as_deref().and_then(next_link);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: std::collections::BTreeMap<String, String>,
}

/// The safetensors files a shard index names, as repository paths
/// (`index_path` is the index's own path in the repository).
pub(crate) fn index_names(index: &[u8], index_path: &str) -> serde_json::Result<BTreeSet<String>> {
    Ok(names_of(serde_json::from_slice(index)?, index_path))
}

fn names_of(index: ShardIndex, index_path: &str) -> BTreeSet<String> {
    let folder = index_path.rsplit_once('/').map(|(d, _)| format!("{d}/"));
    index
        .weight_map
        .into_values()
        .map(|file| format!("{}{file}", folder.as_deref().unwrap_or("")))
        .collect()
}

/// [`index_names`] of the repository's `index_path` at `commit`.
pub fn indexed_files(
    client: &Client,
    repo: &RepoId,
    commit: &str,
    index_path: &str,
    on_retry: &dyn Fn(&str, Duration),
) -> Result<BTreeSet<String>, HubError> {
    let url = format!(
        "{}/{repo}/resolve/{commit}/{}",
        client.endpoint(),
        encode_path(index_path)
    );
    let target = Target {
        repo,
        revision: commit,
        path: Some(index_path),
    };
    let (index, _): (ShardIndex, _) = get_json(client, &url, target, on_retry)?;
    Ok(names_of(index, index_path))
}

/// GET and parse JSON, with retries; also returns the `Link` header.
fn get_json<T: DeserializeOwned>(
    client: &Client,
    url: &str,
    target: Target<'_>,
    on_retry: &dyn Fn(&str, Duration),
) -> Result<(T, Option<String>), HubError> {
    let what = target.describe();
    let (text, link) = client.retrying(&what, on_retry, || {
        let mut response = client.get(url, None, target)?;
        let link = header(&response, "link");
        let text = response
            .body_mut()
            .with_config()
            .limit(JSON_LIMIT)
            .read_to_string()
            .map_err(|e| crate::client::Failure::transient(e.to_string()))?;
        Ok((text, link))
    })?;
    let value = serde_json::from_str(&text).map_err(|source| HubError::Json {
        what: format!("the answer of {url}"),
        source,
    })?;
    Ok((value, link))
}
