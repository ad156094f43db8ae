//! The pages: `report.html` (self-contained) and `report.md`.

pub mod compare;
pub mod diff;
pub mod html;
pub mod markdown;
pub mod model;
pub mod overview;
pub mod sections;

use std::path::{Component, Path};

/// `target` as a link relative to the directory `from` (forward slashes),
/// so that the report folder and the result can move together.
///
/// ```
/// use tpa_report::page::relative_link;
/// assert_eq!(relative_link("/data/out/x.csv".as_ref(), "/data/report".as_ref()), "../out/x.csv");
/// assert_eq!(relative_link("/data/report/x.csv".as_ref(), "/data/report".as_ref()), "x.csv");
/// ```
pub fn relative_link(target: &Path, from: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let (target, from) = (absolute(target), absolute(from));
    let t: Vec<Component> = target
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    let f: Vec<Component> = from
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = f[common..].iter().map(|_| "..".to_owned()).collect();
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}
