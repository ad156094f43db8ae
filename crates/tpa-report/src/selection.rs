//! Which matrices get a spectrum card.

use std::collections::BTreeSet;

use crate::alerts::Alert;
use crate::input::Matrix;
use crate::layers::order;

/// `--cards`: the default selection, a cap on it, every matrix, or a glob.
#[derive(Debug, Clone, PartialEq)]
pub enum Cards {
    /// The default selection, at most this many.
    Default(usize),
    All,
    Matching(glob::Pattern),
}

impl Default for Cards {
    fn default() -> Cards {
        Cards::Default(DEFAULT_CARDS)
    }
}

/// Cards drawn by default.
pub const DEFAULT_CARDS: usize = 40;

impl std::str::FromStr for Cards {
    type Err = String;

    /// `all`, a number, or a glob over matrix names (`*layers.0.*`).
    fn from_str(text: &str) -> Result<Cards, String> {
        if text == "all" {
            return Ok(Cards::All);
        }
        if let Ok(n) = text.parse::<usize>() {
            return Ok(Cards::Default(n));
        }
        glob::Pattern::new(text)
            .map(Cards::Matching)
            .map_err(|e| format!("--cards {text:?}: not all, a number or a glob: {e}"))
    }
}

/// A matrix chosen for a card, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen<'a> {
    pub matrix: &'a Matrix,
    pub reason: String,
}

/// The matrices to draw, in the order shown. The default: for every block
/// type, the matrix of the first, middle and last layer (expert 0 for
/// experts); one matrix per block type outside layers; then every matrix
/// with an alert, most severe first; cut at the cap. Only real matrices
/// (both sides > 1) with a spectrum qualify.
pub fn choose<'a>(
    matrices: &'a [Matrix],
    alerts: &[Alert],
    cards: &Cards,
) -> (Vec<Chosen<'a>>, usize) {
    let eligible: Vec<&Matrix> = matrices
        .iter()
        .filter(|m| m.is_matrix() && m.has_spectrum())
        .collect();
    let (cap, mut picked) = match cards {
        Cards::All => {
            let all = eligible
                .iter()
                .map(|m| Chosen {
                    matrix: m,
                    reason: "every matrix (--cards all)".into(),
                })
                .collect();
            return (all, 0);
        }
        Cards::Matching(pattern) => {
            let all = eligible
                .iter()
                .filter(|m| pattern.matches(&m.name))
                .map(|m| Chosen {
                    matrix: m,
                    reason: format!("matches {}", pattern.as_str()),
                })
                .collect();
            return (all, 0);
        }
        Cards::Default(cap) => (*cap, Vec::new()),
    };
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut push = |m: &'a Matrix, reason: String, picked: &mut Vec<Chosen<'a>>| {
        if taken.insert(m.name.as_str()) {
            picked.push(Chosen { matrix: m, reason });
        }
    };
    let mut series: Vec<String> = eligible.iter().map(|m| m.series()).collect();
    series.sort_by_key(|s| order(s));
    series.dedup();
    for s in &series {
        let members: Vec<&&Matrix> = eligible.iter().filter(|m| &m.series() == s).collect();
        let layers: BTreeSet<u32> = members.iter().filter_map(|m| m.layer).collect();
        let layers: Vec<u32> = layers.into_iter().collect();
        if layers.is_empty() {
            if let Some(m) = members.first() {
                push(m, format!("{s} (outside the layers)"), &mut picked);
            }
            continue;
        }
        let wanted = [
            (layers[0], "first layer"),
            (layers[layers.len() / 2], "middle layer"),
            (layers[layers.len() - 1], "last layer"),
        ];
        for (layer, which) in wanted {
            let first = members
                .iter()
                .filter(|m| m.layer == Some(layer))
                .min_by_key(|m| m.expert.unwrap_or(0));
            if let Some(m) = first {
                push(m, format!("{s}, {which} ({layer})"), &mut picked);
            }
        }
    }
    for alert in alerts {
        if let Some(m) = eligible.iter().find(|m| m.name == alert.param_name) {
            push(m, format!("alert: {}", alert.kind.as_str()), &mut picked);
        }
    }
    let left_out = picked.len().saturating_sub(cap);
    picked.truncate(cap);
    (picked, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, block: &str, layer: Option<u32>) -> Matrix {
        Matrix {
            name: name.into(),
            param_name: name.into(),
            block_type: block.into(),
            layer,
            rows: 4,
            cols: 4,
            spectral_norm: Some(1.0),
            ..Matrix::default()
        }
    }

    #[test]
    fn first_middle_last_and_outside_layers() {
        let mut ms: Vec<Matrix> = (0..5)
            .map(|l| m(&format!("q{l}"), "q_proj", Some(l)))
            .collect();
        ms.push(m("embed", "embedding", None));
        let (chosen, left) = choose(&ms, &[], &Cards::default());
        let names: Vec<&str> = chosen.iter().map(|c| c.matrix.name.as_str()).collect();
        assert_eq!(names, ["q0", "q2", "q4", "embed"]);
        assert_eq!(left, 0);
        let (capped, left) = choose(&ms, &[], &Cards::Default(2));
        assert_eq!((capped.len(), left), (2, 2));
        let (globbed, _) = choose(&ms, &[], &"q[13]".parse().unwrap());
        assert_eq!(globbed.len(), 2);
    }
}
