//! Page pieces that model and comparison reports share.

use std::collections::BTreeMap;

use super::html::{self, Page, Td, escape, facts, figure, group_digits, note};
use super::markdown::{Markdown, code};
use super::overview::tallies;
use crate::alerts::Alert;
use crate::charts::Chart;
use crate::draw::scale::format_number;
use crate::input::{Embedding, Matrix};
use crate::layers::median;

/// Parameters by block type and by dtype.
pub fn tallies_html(matrices: &[Matrix]) -> String {
    let (by_block, by_dtype, total) = tallies(matrices);
    let share = |p: u64| {
        if total.parameters > 0 {
            Some(100.0 * p as f64 / total.parameters as f64)
        } else {
            None
        }
    };
    let rows = |groups: &[(String, super::overview::Tally)]| -> Vec<(Option<&str>, Vec<Td>)> {
        groups
            .iter()
            .map(|(name, t)| {
                (
                    None,
                    vec![
                        Td::Text(name.clone()),
                        Td::count(Some(t.matrices)),
                        Td::count(Some(t.parameters)),
                        Td::Num(
                            share(t.parameters),
                            share(t.parameters).map_or("–".into(), |s| format!("{s:.2}%")),
                        ),
                        Td::Num(
                            t.bytes.map(|b| b as f64),
                            t.bytes.map_or("–".into(), html::bytes),
                        ),
                    ],
                )
            })
            .collect()
    };
    let mut out = String::from("<div class=\"row\"><div><h3>Parameters by block type</h3>");
    out.push_str(&html::table(
        &["block type", "rows", "parameters", "share", "bytes"],
        &rows(&by_block),
        true,
    ));
    out.push_str("</div><div><h3>Parameters by dtype</h3>");
    out.push_str(&html::table(
        &["dtype", "rows", "parameters", "share", "bytes"],
        &rows(&by_dtype),
        true,
    ));
    out.push_str("</div></div>");
    out
}

/// The columns of alert tables.
pub const ALERT_COLUMNS: [&str; 6] = [
    "severity",
    "kind",
    "tensor",
    "value",
    "threshold",
    "message",
];

/// The alerts in report.md: counts, then the first 50.
pub fn alerts_markdown(md: &mut Markdown, alerts: &[Alert]) {
    md.heading(2, "Alerts");
    if alerts.is_empty() {
        md.paragraph("No alerts.");
        return;
    }
    let mut counts: BTreeMap<(crate::alerts::Severity, &str), usize> = BTreeMap::new();
    for a in alerts {
        *counts.entry((a.severity, a.kind.as_str())).or_default() += 1;
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|((s, k), n)| format!("{} {k} × {n}", s.as_str()))
        .collect();
    md.paragraph(&format!(
        "{} (every alert with its value and threshold: alerts.json).",
        summary.join(", ")
    ));
    let shown = 50;
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .take(shown)
        .map(|a| {
            vec![
                a.model.clone().map_or(String::new(), |m| format!("{m}: ")) + a.severity.as_str(),
                a.kind.as_str().into(),
                code(&a.param_name),
                a.value.map_or("–".into(), format_number),
                a.threshold.map_or("–".into(), format_number),
                a.message.clone(),
            ]
        })
        .collect();
    md.table(&ALERT_COLUMNS, &rows);
    if alerts.len() > shown {
        md.paragraph(&format!(
            "… and {} more in alerts.json.",
            alerts.len() - shown
        ));
    }
}

/// Per block type: count and medians, for results too large to list.
pub fn block_summary_html(matrices: &[Matrix], alerts: &[Alert]) -> String {
    let mut groups: BTreeMap<String, Vec<&Matrix>> = BTreeMap::new();
    for m in matrices {
        groups.entry(m.series()).or_default().push(m);
    }
    let alerted: std::collections::HashSet<&str> =
        alerts.iter().map(|a| a.param_name.as_str()).collect();
    let med = |ms: &[&Matrix], f: fn(&Matrix) -> Option<f64>| {
        let mut v: Vec<f64> = ms.iter().filter_map(|m| f(m)).collect();
        median(&mut v)
    };
    let rows: Vec<(Option<&str>, Vec<Td>)> = groups
        .iter()
        .map(|(name, ms)| {
            (
                None,
                vec![
                    Td::Text(name.clone()),
                    Td::count(Some(ms.len() as u64)),
                    Td::count(Some(
                        ms.iter()
                            .filter(|m| alerted.contains(m.name.as_str()))
                            .count() as u64,
                    )),
                    Td::num(med(ms, |m| m.rank_ratio())),
                    Td::num(med(ms, |m| m.energy_ratio_90())),
                    Td::num(med(ms, |m| m.alpha)),
                    Td::num(med(ms, |m| m.stable_rank)),
                    Td::num(med(ms, |m| m.spectral_norm)),
                    Td::num(med(ms, |m| m.std)),
                ],
            )
        })
        .collect();
    html::table(
        &[
            "series",
            "rows",
            "with alerts",
            "median rank ratio",
            "median 90% ratio",
            "median α",
            "median stable rank",
            "median σ₁",
            "median std",
        ],
        &rows,
        true,
    )
}

/// The embedding section: facts, the sweep curve, cluster sizes and
/// silhouettes, and the representative tokens. Chart names end in `suffix`.
pub fn embedding(embedding: &Embedding, md: &mut Markdown, suffix: &str) -> (String, Vec<Chart>) {
    let charts = crate::charts::embedding::embedding_charts(embedding, suffix);
    let e = &embedding.report;
    let list = vec![
        ("tensor".to_owned(), e.tensor.clone()),
        (
            "tokens × dimension".into(),
            format!(
                "{} × {}",
                group_digits(e.total_tokens as u64),
                e.embedding_dimension
            ),
        ),
        ("criterion".into(), embedding.criterion()),
        ("chosen k".into(), e.optimal_k.to_string()),
        (
            "mean silhouette".into(),
            e.silhouette_score.map_or("–".into(), format_number),
        ),
        (
            "sweep".into(),
            format!(
                "max k {}, {} runs per k, seed {}{}",
                e.run.max_k,
                e.run.n_init,
                e.run.seed,
                if e.run.sweep_sampled {
                    format!(
                        ", on {} sampled rows",
                        group_digits(e.run.sweep_rows as u64)
                    )
                } else {
                    ", on every row".into()
                }
            ),
        ),
        ("engine".into(), e.run.engine.clone()),
        ("from".into(), embedding.path.display().to_string()),
    ];
    let mut body = facts(&list);
    body.push_str(&note(
        "On data without clear clusters the F-ratio falls as k grows, so the highest F is often the \
         smallest k: read the whole curve and the silhouettes before calling a k the structure.",
    ));
    md.heading(2, "Embedding");
    md.facts(&list);
    for chart in &charts {
        body.push_str(&figure(chart, "Hover over a point or bar for its value."));
        md.chart(&chart.name, &chart.scene.title);
    }
    let rows: Vec<(Option<&str>, Vec<Td>)> = e
        .clusters
        .iter()
        .map(|c| {
            (
                None,
                vec![
                    Td::count(Some(c.cluster_id as u64)),
                    Td::count(Some(c.size as u64)),
                    Td::Num(Some(c.percentage), format!("{:.2}%", c.percentage)),
                    Td::num(Some(c.avg_distance)),
                    Td::num(c.silhouette_score),
                    Td::Text(c.meaningful_text.clone()),
                ],
            )
        })
        .collect();
    body.push_str("<h3>Clusters and their representative tokens</h3>");
    body.push_str(&html::table(
        &[
            "cluster",
            "size",
            "share",
            "mean distance",
            "silhouette",
            "tokens nearest the centre",
        ],
        &rows,
        true,
    ));
    (body, charts)
}

/// A section of charts in both pages: each chart inline in the HTML with
/// its caption, and as an image in report.md. Nothing when there are none.
pub struct ChartSection<'a> {
    pub id: &'a str,
    pub title: &'a str,
    /// A note above the charts.
    pub intro: &'a str,
}

impl ChartSection<'_> {
    /// Adds the section, then moves the charts into `all`, to be written.
    pub fn add(
        &self,
        page: &mut Page,
        md: &mut Markdown,
        charts: Vec<Chart>,
        caption: impl Fn(&Chart) -> String,
        all: &mut Vec<Chart>,
    ) {
        if charts.is_empty() {
            return;
        }
        let mut body = if self.intro.is_empty() {
            String::new()
        } else {
            note(self.intro)
        };
        md.heading(2, self.title);
        for chart in &charts {
            body.push_str(&figure(chart, &caption(chart)));
            md.chart(&chart.name, &chart.scene.title);
        }
        page.section(self.id, self.title, body);
        all.extend(charts);
    }
}

/// Escaped text in a paragraph (for statements).
pub fn strong(text: &str) -> String {
    format!("<p><strong>{}</strong></p>", escape(text))
}
