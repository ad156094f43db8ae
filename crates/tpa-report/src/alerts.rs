//! Typed alerts: what in a result deserves a look, with the value, the
//! threshold and a one-line meaning. The rules and thresholds are listed in
//! [`Kind::rule`] (and in the README); they read the result alone.

use std::collections::HashMap;

use serde::Serialize;

use crate::draw::scale::format_number;
use crate::input::Matrix;
use crate::layers::median;

/// WeightWatcher's thresholds (`OVER_TRAINED_THRESH`, `UNDER_TRAINED_THRESH`).
pub const ALPHA_LOW: f64 = 2.0;
pub const ALPHA_HIGH: f64 = 6.0;
/// WeightWatcher fits only matrices with at least this many eigenvalues
/// (`DEFAULT_MIN_EVALS`); α alerts follow it.
pub const MIN_EVALS: u64 = 10;
/// `ill_conditioned` fires when σ₁/σ_n exceeds this share of 1/rank_rtol:
/// σ_n is then within 10× of the rank tolerance.
pub const ILL_CONDITIONED_SHARE: f64 = 0.1;
/// `low_energy_rank` fires below this share of the series' median.
pub const LOW_ENERGY_SHARE: f64 = 0.5;
/// `layer_outlier`: robust z-score limit (Iglewicz & Hoaglin's 3.5) on
/// log10 of the metric, z = (x − median) / (1.4826 · MAD).
pub const OUTLIER_Z: f64 = 3.5;
/// The MAD used is at least this (log10 units: a factor of 1.12), so that
/// layers that are nearly alike do not make every small difference an
/// outlier: an outlier is then at least a factor of 1.8 from the median.
pub const OUTLIER_MIN_MAD: f64 = 0.05;
/// Groups smaller than this have no robust median.
pub const OUTLIER_MIN_GROUP: usize = 5;
/// Groups smaller than this have no typical energy rank.
pub const LOW_ENERGY_MIN_GROUP: usize = 3;

/// How serious an alert is; sorts most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Nan,
    Inf,
    ZeroTensor,
    ConstantTensor,
    RankDeficient,
    LowEnergyRank,
    AlphaLow,
    AlphaHigh,
    FitFailed,
    IllConditioned,
    DuplicateTensor,
    LayerOutlier,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Nan,
        Kind::Inf,
        Kind::ZeroTensor,
        Kind::ConstantTensor,
        Kind::RankDeficient,
        Kind::LowEnergyRank,
        Kind::AlphaLow,
        Kind::AlphaHigh,
        Kind::FitFailed,
        Kind::IllConditioned,
        Kind::DuplicateTensor,
        Kind::LayerOutlier,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Nan => "nan",
            Kind::Inf => "inf",
            Kind::ZeroTensor => "zero_tensor",
            Kind::ConstantTensor => "constant_tensor",
            Kind::RankDeficient => "rank_deficient",
            Kind::LowEnergyRank => "low_energy_rank",
            Kind::AlphaLow => "alpha_low",
            Kind::AlphaHigh => "alpha_high",
            Kind::FitFailed => "fit_failed",
            Kind::IllConditioned => "ill_conditioned",
            Kind::DuplicateTensor => "duplicate_tensor",
            Kind::LayerOutlier => "layer_outlier",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Kind::Nan | Kind::Inf => Severity::Error,
            Kind::IllConditioned | Kind::DuplicateTensor => Severity::Info,
            _ => Severity::Warning,
        }
    }

    /// When it fires, with its threshold.
    pub fn rule(self) -> &'static str {
        match self {
            Kind::Nan => "the tensor holds NaN values (nan_count > 0)",
            Kind::Inf => "the tensor holds ±Inf values (inf_count > 0)",
            Kind::ZeroTensor => "every value is 0 (min = max = 0)",
            Kind::ConstantTensor => {
                "every value is the same non-zero number (min = max, more than one element)"
            }
            Kind::RankDeficient => {
                "actual_rank < design_rank = min(m, n), for matrices with both sides > 1"
            }
            Kind::LowEnergyRank => {
                "svd_90_percent_ratio below 0.5 × the median of its block type across layers (3 or more matrices of one shape)"
            }
            Kind::AlphaLow => {
                "α < 2 (WeightWatcher: over-trained, very heavy-tailed), for matrices with ≥ 10 eigenvalues"
            }
            Kind::AlphaHigh => {
                "α > 6 (WeightWatcher: under-trained, close to random), for matrices with ≥ 10 eigenvalues"
            }
            Kind::FitFailed => {
                "a spectrum of ≥ 10 eigenvalues without a power-law fit (fewer than 2 eigenvalues above 1e-5, or a tail of equal values)"
            }
            Kind::IllConditioned => {
                "condition number σ₁/σ_n > 0.1 / rank_rtol (1e5 at the default 1e-6): σ_n is within 10× of the rank tolerance, so the rank depends on it"
            }
            Kind::DuplicateTensor => {
                "the same stored bytes (digest), dtype and shape as an earlier tensor, e.g. tied embeddings stored twice; constant tensors are left out"
            }
            Kind::LayerOutlier => {
                "spectral norm, Frobenius norm, stable rank or α far from the median of the same block type and shape across layers: |z| > 3.5 with z = (log10 x − median) / (1.4826 · MAD), MAD at least 0.05 (so at least a factor 1.8 from the median); groups of 5 or more"
            }
        }
    }

    /// Parses a kind's name.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub kind: Kind,
    pub severity: Severity,
    /// The matrix (`NAME[e]` for one expert of a stacked tensor).
    pub param_name: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub message: String,
    /// In comparison reports: the model the alert is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl Alert {
    fn new(
        kind: Kind,
        m: &Matrix,
        value: Option<f64>,
        threshold: Option<f64>,
        message: String,
    ) -> Alert {
        Alert {
            kind,
            severity: kind.severity(),
            param_name: m.name.clone(),
            value,
            threshold,
            message,
            model: None,
        }
    }
}

/// Every alert of one result, most severe first (then by kind, then in row order).
pub fn detect(matrices: &[Matrix]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for m in matrices {
        per_matrix(m, &mut alerts);
    }
    duplicates(matrices, &mut alerts);
    group_alerts(matrices, &mut alerts);
    let by_name: HashMap<&str, &Matrix> = matrices.iter().map(|m| (m.name.as_str(), m)).collect();
    for alert in &mut alerts {
        if let Some(m) = by_name.get(alert.param_name.as_str()) {
            downgrade_benign(alert, m);
        }
    }
    let position: HashMap<&str, usize> = matrices
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    alerts.sort_by_key(|a| {
        (
            a.severity,
            a.kind,
            position
                .get(a.param_name.as_str())
                .copied()
                .unwrap_or(usize::MAX),
        )
    });
    alerts
}

/// Zero or constant: such tensors get no spectral alerts, which would only
/// restate it.
fn is_flat(m: &Matrix) -> bool {
    matches!((m.min, m.max), (Some(lo), Some(hi)) if lo == hi && m.numel.unwrap_or(2) > 1)
}

fn per_matrix(m: &Matrix, alerts: &mut Vec<Alert>) {
    if m.nan_count > 0 {
        alerts.push(Alert::new(
            Kind::Nan,
            m,
            Some(m.nan_count as f64),
            Some(0.0),
            format!(
                "{} NaN value{}: no spectrum; the statistics cover the finite values",
                m.nan_count,
                plural(m.nan_count)
            ),
        ));
    }
    if m.inf_count > 0 {
        alerts.push(Alert::new(
            Kind::Inf,
            m,
            Some(m.inf_count as f64),
            Some(0.0),
            format!(
                "{} ±Inf value{}: no spectrum; the statistics cover the finite values",
                m.inf_count,
                plural(m.inf_count)
            ),
        ));
    }
    if let (Some(lo), Some(hi)) = (m.min, m.max) {
        if lo == 0.0 && hi == 0.0 {
            alerts.push(Alert::new(
                Kind::ZeroTensor,
                m,
                Some(0.0),
                Some(0.0),
                "every value is 0: the tensor carries nothing (never trained, or zeroed)".into(),
            ));
            return;
        }
        if is_flat(m) {
            alerts.push(Alert::new(
                Kind::ConstantTensor,
                m,
                Some(lo),
                None,
                format!(
                    "every value is {}: rank ≤ 1, typical of a weight that was never trained",
                    format_number(lo)
                ),
            ));
            return;
        }
    }
    let mut deficient = false;
    if let (true, Some(rank)) = (m.is_matrix(), m.actual_rank) {
        if rank < m.design_rank {
            deficient = true;
            alerts.push(Alert::new(
                Kind::RankDeficient,
                m,
                Some(rank as f64),
                Some(m.design_rank as f64),
                format!(
                    "rank {rank} of {}: {} direction{} carry no signal above the rank tolerance",
                    m.design_rank,
                    m.design_rank - rank,
                    plural(m.design_rank - rank)
                ),
            ));
        }
    }
    if !m.has_spectrum() {
        return;
    }
    if m.design_rank >= MIN_EVALS {
        match m.alpha {
            None => alerts.push(Alert::new(
                Kind::FitFailed,
                m,
                None,
                None,
                "no power law could be fitted to the eigenvalues".into(),
            )),
            Some(a) if a < ALPHA_LOW => alerts.push(Alert::new(
                Kind::AlphaLow,
                m,
                Some(a),
                Some(ALPHA_LOW),
                format!(
                    "α = {} < {ALPHA_LOW}: very heavy-tailed spectrum (WeightWatcher: over-trained)",
                    format_number(a)
                ),
            )),
            Some(a) if a > ALPHA_HIGH => alerts.push(Alert::new(
                Kind::AlphaHigh,
                m,
                Some(a),
                Some(ALPHA_HIGH),
                format!(
                    "α = {} > {ALPHA_HIGH}: light-tailed, close to random (WeightWatcher: under-trained)",
                    format_number(a)
                ),
            )),
            Some(_) => {}
        }
    }
    let rtol = m.rank_rtol().unwrap_or(1e-6);
    let limit = ILL_CONDITIONED_SHARE / rtol;
    if let (false, true, Some(kappa)) = (deficient, m.is_matrix(), m.condition_number) {
        if kappa > limit {
            alerts.push(Alert::new(
                Kind::IllConditioned,
                m,
                Some(kappa),
                Some(limit),
                format!(
                    "condition number {} > {}: σ_min is within 10× of the rank tolerance, so the rank depends on it",
                    format_number(kappa),
                    format_number(limit)
                ),
            ));
        }
    }
}

/// Tensors with the same digest, dtype and shape as an earlier one. The
/// original is the embedding when the group has one (so a tied lm_head is
/// the copy), else the first in row order.
fn duplicates(matrices: &[Matrix], alerts: &mut Vec<Alert>) {
    let mut groups: HashMap<(&str, &str, &[u64]), Vec<&Matrix>> = HashMap::new();
    for m in matrices {
        if let Some(d) = &m.digest {
            if !is_flat(m) && m.numel.unwrap_or(0) > 1 && m.nan_count + m.inf_count == 0 {
                groups.entry((d, &m.dtype, &m.shape)).or_default().push(m);
            }
        }
    }
    let mut found: Vec<Vec<&Matrix>> = groups.into_values().filter(|g| g.len() > 1).collect();
    found.sort_by_key(|g| g[0].name.clone());
    for group in found {
        let original = group
            .iter()
            .find(|m| m.block_type == "embedding")
            .unwrap_or(&group[0]);
        for m in &group {
            if m.name != original.name {
                alerts.push(Alert::new(
                    Kind::DuplicateTensor,
                    m,
                    None,
                    None,
                    format!(
                        "the same stored bytes as {} (e.g. tied weights stored twice)",
                        original.name
                    ),
                ));
            }
        }
    }
}

/// A metric of a matrix.
type Getter = fn(&Matrix) -> Option<f64>;

/// The metrics `layer_outlier` compares, with their names.
const OUTLIER_METRICS: [(&str, Getter); 4] = [
    ("spectral norm", |m| m.spectral_norm),
    ("Frobenius norm", |m| m.frobenius_norm),
    ("stable rank", |m| m.stable_rank),
    ("α", |m| m.alpha),
];

/// Alerts that compare a matrix with the others of its series and shape
/// across layers: `low_energy_rank` and `layer_outlier`.
fn group_alerts(matrices: &[Matrix], alerts: &mut Vec<Alert>) {
    let mut groups: HashMap<(String, u64, u64), Vec<&Matrix>> = HashMap::new();
    for m in matrices {
        let usable = m.is_matrix()
            && m.layer.is_some()
            && m.has_spectrum()
            && !is_flat(m)
            && m.nan_count + m.inf_count == 0;
        if usable {
            groups
                .entry((m.series(), m.rows, m.cols))
                .or_default()
                .push(m);
        }
    }
    let mut keys: Vec<_> = groups.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let group = &groups[&key];
        low_energy(&key.0, group, alerts);
        outliers(&key.0, group, alerts);
    }
}

fn low_energy(series: &str, group: &[&Matrix], alerts: &mut Vec<Alert>) {
    if group.len() < LOW_ENERGY_MIN_GROUP {
        return;
    }
    let mut ratios: Vec<f64> = group.iter().filter_map(|m| m.energy_ratio_90()).collect();
    let Some(typical) = median(&mut ratios) else {
        return;
    };
    let limit = LOW_ENERGY_SHARE * typical;
    for m in group {
        if let Some(r) = m.energy_ratio_90().filter(|&r| r < limit) {
            alerts.push(Alert::new(
                Kind::LowEnergyRank,
                m,
                Some(r),
                Some(limit),
                format!(
                    "90% of the energy in {:.1}% of the directions, under half the {series} median of {:.1}%",
                    r * 100.0,
                    typical * 100.0
                ),
            ));
        }
    }
}

fn outliers(series: &str, group: &[&Matrix], alerts: &mut Vec<Alert>) {
    if group.len() < OUTLIER_MIN_GROUP {
        return;
    }
    // The strongest deviation per matrix: (z, metric, value, bound, median).
    let mut worst: HashMap<&str, (f64, &str, f64, f64, f64)> = HashMap::new();
    for (name, metric) in OUTLIER_METRICS {
        let logs: Vec<(&Matrix, f64)> = group
            .iter()
            .filter_map(|m| metric(m).filter(|v| *v > 0.0).map(|v| (*m, v.log10())))
            .collect();
        if logs.len() < OUTLIER_MIN_GROUP {
            continue;
        }
        let mut values: Vec<f64> = logs.iter().map(|p| p.1).collect();
        let Some(center) = median(&mut values) else {
            continue;
        };
        let mut deviations: Vec<f64> = logs.iter().map(|p| (p.1 - center).abs()).collect();
        let mad = median(&mut deviations).unwrap_or(0.0).max(OUTLIER_MIN_MAD);
        let sigma = 1.4826 * mad;
        for (m, lx) in logs {
            let z = (lx - center) / sigma;
            if z.abs() > OUTLIER_Z {
                let bound = 10f64.powf(center + OUTLIER_Z * sigma * z.signum());
                let entry = worst.entry(&m.name).or_insert((0.0, name, 0.0, 0.0, 0.0));
                if z.abs() > entry.0.abs() {
                    *entry = (z, name, 10f64.powf(lx), bound, 10f64.powf(center));
                }
            }
        }
    }
    for m in group {
        if let Some(&(z, metric, value, bound, center)) = worst.get(m.name.as_str()) {
            let factor = value / center;
            let how = if factor >= 1.0 {
                format!("{}×", format_number(factor))
            } else {
                format!("1/{}", format_number(1.0 / factor))
            };
            alerts.push(Alert::new(
                Kind::LayerOutlier,
                m,
                Some(value),
                Some(bound),
                format!(
                    "{metric} {} is {how} the median {} of {series} over {} layers (robust z = {}, limit {OUTLIER_Z})",
                    format_number(value),
                    format_number(center),
                    group.len(),
                    format_number(z),
                ),
            ));
        }
    }
}

/// Tensors that are stored with a model but are not learned weights.
fn downgrade_benign(alert: &mut Alert, m: &Matrix) {
    if alert.severity == Severity::Info {
        return;
    }
    let mut parts = m.param_name.rsplit('.');
    let (last, owner) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let why = if m.is_integer() {
        Some("an integer tensor, a buffer such as BERT's position_ids, not a learned weight")
    } else if matches!(last, "position_ids" | "inv_freq" | "masked_bias")
        || (last, owner) == ("bias", "attn")
    {
        Some(
            "a buffer saved with the model (position ids, rotary frequencies, GPT-2's attention mask), not a learned weight",
        )
    } else {
        None
    };
    if let Some(why) = why {
        alert.severity = Severity::Info;
        alert.message = format!("{} (info: {why})", alert.message);
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What `--fail-on` matches: alert kinds, or severities at or above a level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailOn {
    kinds: Vec<Kind>,
    at_least: Option<Severity>,
}

impl std::str::FromStr for FailOn {
    type Err = String;

    /// `nan,inf,zero_tensor`, `warning` (warnings and errors), `error`, `info` (any alert).
    fn from_str(text: &str) -> Result<FailOn, String> {
        let mut fail = FailOn::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let severity = match word {
                "error" | "errors" => Some(Severity::Error),
                "warning" | "warnings" => Some(Severity::Warning),
                "info" | "any" => Some(Severity::Info),
                _ => None,
            };
            match severity {
                // The broadest severity named wins: "error,warning" is warnings and errors.
                Some(s) => fail.at_least = Some(fail.at_least.map_or(s, |cur| cur.max(s))),
                None => match Kind::parse(word) {
                    Some(kind) => fail.kinds.push(kind),
                    None => {
                        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                        return Err(format!(
                            "unknown alert kind or severity {word:?}; use error, warning, info or {}",
                            kinds.join(", ")
                        ));
                    }
                },
            }
        }
        if fail.kinds.is_empty() && fail.at_least.is_none() {
            return Err("--fail-on needs alert kinds or a severity".into());
        }
        Ok(fail)
    }
}

impl FailOn {
    /// Whether `alert` trips the gate.
    pub fn matches(&self, alert: &Alert) -> bool {
        self.kinds.contains(&alert.kind) || self.at_least.is_some_and(|s| alert.severity <= s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(name: &str, layer: u32) -> Matrix {
        Matrix {
            name: name.into(),
            param_name: name.into(),
            block_type: "q_proj".into(),
            layer: Some(layer),
            dtype: "float32".into(),
            rows: 64,
            cols: 64,
            numel: Some(4096),
            design_rank: 64,
            actual_rank: Some(64),
            energy_rank_90: Some(40),
            min: Some(-1.0),
            max: Some(1.0),
            rank_tol: Some(1e-6),
            spectral_norm: Some(1.0),
            frobenius_norm: Some(4.0),
            stable_rank: Some(16.0),
            condition_number: Some(10.0),
            alpha: Some(3.0),
            digest: Some(format!("digest of {name}")),
            ..Matrix::default()
        }
    }

    fn kinds(alerts: &[Alert]) -> Vec<(&str, &str)> {
        alerts
            .iter()
            .map(|a| (a.kind.as_str(), a.param_name.as_str()))
            .collect()
    }

    #[test]
    fn identical_layers_raise_nothing() {
        let ms: Vec<Matrix> = (0..6).map(|l| matrix(&format!("l{l}"), l)).collect();
        assert!(detect(&ms).is_empty());
    }

    #[test]
    fn a_scaled_layer_is_an_outlier_and_a_small_wobble_is_not() {
        let mut ms: Vec<Matrix> = (0..6).map(|l| matrix(&format!("l{l}"), l)).collect();
        ms[1].spectral_norm = Some(1.5); // 50%: within the floor of the MAD
        ms[3].spectral_norm = Some(50.0);
        ms[3].frobenius_norm = Some(200.0);
        let alerts = detect(&ms);
        assert_eq!(kinds(&alerts), [("layer_outlier", "l3")]);
        assert!(
            alerts[0].message.contains("spectral norm 50 is 50×"),
            "{}",
            alerts[0].message
        );
    }

    #[test]
    fn a_zero_matrix_gets_one_alert() {
        let mut ms: Vec<Matrix> = (0..6).map(|l| matrix(&format!("l{l}"), l)).collect();
        let z = &mut ms[2];
        (z.min, z.max, z.actual_rank, z.alpha) = (Some(0.0), Some(0.0), Some(0), None);
        (z.spectral_norm, z.frobenius_norm, z.stable_rank) = (Some(0.0), Some(0.0), None);
        assert_eq!(kinds(&detect(&ms)), [("zero_tensor", "l2")]);
    }

    #[test]
    fn alpha_thresholds_and_min_evals() {
        let mut low = matrix("low", 0);
        low.alpha = Some(1.5);
        let mut high = matrix("high", 0);
        high.alpha = Some(7.0);
        let mut small = matrix("small", 0);
        (small.rows, small.cols, small.design_rank, small.actual_rank) = (2, 64, 2, Some(2));
        small.alpha = Some(1.1);
        let alerts = detect(&[low, high, small]);
        assert_eq!(
            kinds(&alerts),
            [("alpha_low", "low"), ("alpha_high", "high")]
        );
        assert_eq!(
            (alerts[0].value, alerts[0].threshold),
            (Some(1.5), Some(2.0))
        );
    }

    #[test]
    fn a_tied_copy_is_the_duplicate_not_the_embedding() {
        let mut head = matrix("lm_head.weight", 0);
        head.layer = None;
        head.block_type = "output".into();
        let mut embed = head.clone();
        embed.name = "model.embed_tokens.weight".into();
        embed.block_type = "embedding".into();
        let alerts = detect(&[head, embed]);
        assert_eq!(kinds(&alerts), [("duplicate_tensor", "lm_head.weight")]);
        assert_eq!(alerts[0].severity, Severity::Info);
    }

    #[test]
    fn integer_buffers_are_downgraded() {
        let mut ids = matrix("embeddings.position_ids", 0);
        (ids.dtype, ids.alpha) = ("int64".into(), Some(9.0));
        let alerts = detect(&[ids]);
        assert_eq!(alerts[0].severity, Severity::Info);
        assert!(alerts[0].message.contains("position_ids"));
    }

    #[test]
    fn fail_on_kinds_and_severities() {
        let mut ids = matrix("m", 0);
        ids.nan_count = 2;
        ids.spectral_norm = None;
        let alerts = detect(&[ids]);
        let nan: FailOn = "nan".parse().unwrap();
        let warning: FailOn = "warning".parse().unwrap();
        let dup: FailOn = "duplicate_tensor".parse().unwrap();
        assert!(nan.matches(&alerts[0]) && warning.matches(&alerts[0]));
        assert!(!dup.matches(&alerts[0]));
        assert!("nan,bogus".parse::<FailOn>().is_err());
        assert!("".parse::<FailOn>().is_err());
    }
}
