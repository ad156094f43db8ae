//! The comparison report of 2 to 8 models; the first result is the
//! reference the others are compared with.

use super::html::{self, Page, Td, escape, figure, note};
use super::markdown::{Markdown, code};
use super::sections::ChartSection;
use super::{model::alerts_html, overview, sections};
use crate::alerts::{self, Alert};
use crate::charts::compare::{describe_change, most_changed, scatter, unmatched};
use crate::charts::heatmaps::{change_label, delta_heatmap};
use crate::charts::{self, Chart};
use crate::draw::scale::format_number;
use crate::input::Input;
use crate::metrics::Metric;
use crate::{Options, Report};

/// Most changed matrices listed per model.
pub const TOP_CHANGED: usize = 20;
/// Unmatched names listed per side (all are counted).
const MAX_UNMATCHED: usize = 200;

pub fn report(inputs: &[Input], options: &Options) -> Report {
    let reference = &inputs[0];
    let labels: Vec<&str> = inputs.iter().map(|i| i.label.as_str()).collect();
    let title = options
        .title
        .clone()
        .unwrap_or_else(|| format!("Comparison: {}", labels.join(" · ")));
    let subtitle = format!(
        "{} models; reference: {} · tpa-report {}",
        inputs.len(),
        reference.label,
        env!("CARGO_PKG_VERSION")
    );
    let mut page = Page::new(&title, &subtitle);
    let mut md = Markdown::default();
    md.heading(1, &title);
    md.paragraph(&subtitle);
    let mut all_charts: Vec<Chart> = Vec::new();

    // Overview: one column per model.
    // The "model" fact is each column's header.
    let facts: Vec<Vec<(String, String)>> = inputs
        .iter()
        .map(|i| {
            overview::facts(i)
                .into_iter()
                .filter(|(k, _)| k != "model")
                .collect()
        })
        .collect();
    let mut keys: Vec<String> = Vec::new();
    for f in &facts {
        for (k, _) in f {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            std::iter::once(k.clone())
                .chain(facts.iter().map(|f| {
                    f.iter()
                        .find(|(key, _)| key == k)
                        .map_or("–".into(), |(_, v)| v.clone())
                }))
                .collect()
        })
        .collect();
    let mut headers = vec![""];
    headers.extend(labels.iter().copied());
    let mut body = html::table(
        &headers,
        &rows
            .iter()
            .map(|r| (None, r.iter().map(|c| Td::Text(c.clone())).collect()))
            .collect::<Vec<_>>(),
        false,
    );
    let statements: Vec<String> = inputs.iter().map(overview::sampling).collect();
    if statements.iter().all(|s| *s == statements[0]) {
        body.push_str(&sections::strong(&format!(
            "Every model: {}",
            statements[0]
        )));
    } else {
        for (input, s) in inputs.iter().zip(&statements) {
            body.push_str(&sections::strong(&format!("{}: {s}", input.label)));
        }
    }
    page.section("overview", "Overview", body);
    md.heading(2, "Overview");
    md.table(&headers, &rows);

    // Alerts of every model.
    let mut alerts: Vec<Alert> = Vec::new();
    for input in inputs {
        for mut a in alerts::detect(&input.result.matrices) {
            a.model = Some(input.label.clone());
            alerts.push(a);
        }
    }
    alerts.sort_by_key(|a| a.severity);
    page.section("alerts", "Alerts", alerts_html(&alerts, Some("model")));
    sections::alerts_markdown(&mut md, &alerts);

    // Overlaid layer profiles.
    ChartSection {
        id: "profiles",
        title: "Layer profiles",
        intro: "One panel per block type; one line per model. Experts: the mean of a layer's experts.",
    }
    .add(
        &mut page,
        &mut md,
        charts::profiles::compare_profiles(inputs),
        |_| "Hover over a point for the model, the matrix and the value.".into(),
        &mut all_charts,
    );

    // Paired scatters and Δ heatmaps against the reference.
    let mut scatter_body = note(&format!(
        "Each model against {}: one point per matrix matched by name, coloured by block type.",
        reference.label
    ));
    let mut delta_body = String::new();
    md.heading(2, "Against the reference");
    for (index, other) in inputs.iter().enumerate().skip(1) {
        scatter_body.push_str(&format!(
            "<h3>{}</h3><div class=\"row\">",
            escape(&other.label)
        ));
        let mut panels = Vec::new();
        for metric in Metric::ALL {
            if let Some(chart) = scatter(reference, other, index, metric) {
                scatter_body.push_str(&figure(
                    &chart,
                    "Hover over a point for the matrix and both values.",
                ));
                md.chart(&chart.name, &chart.scene.title);
                all_charts.push(chart);
            }
            if let Some(chart) = delta_heatmap(reference, other, index, metric) {
                panels.push((
                    metric.key().to_owned(),
                    metric.name().to_owned(),
                    figure(&chart, &change_label(metric)),
                ));
                md.chart(&chart.name, &chart.scene.title);
                all_charts.push(chart);
            }
        }
        scatter_body.push_str("</div>");
        if !panels.is_empty() {
            delta_body.push_str(&format!("<h3>{}</h3>", escape(&other.label)));
            delta_body.push_str(&html::switch("metric:", &panels));
        }
    }
    page.section("scatter", "Paired scatter", scatter_body);
    if !delta_body.is_empty() {
        page.section("delta", "Δ heatmap", delta_body);
    }

    // The most changed matrices, and what could not be matched.
    let mut changed_body = note(&format!(
        "Per model, the {TOP_CHANGED} matrices whose metrics moved most from {}: the score is the \
         largest relative change |b − a| / |a| over α, the energy and rank ratios, the stable rank, \
         the spectral norm and the std.",
        reference.label
    ));
    let mut unmatched_body = String::new();
    md.heading(2, "Most changed matrices");
    for other in &inputs[1..] {
        let top = most_changed(reference, other, TOP_CHANGED);
        changed_body.push_str(&format!("<h3>{}</h3>", escape(&other.label)));
        let rows: Vec<(Option<&str>, Vec<Td>)> = top
            .iter()
            .map(|c| {
                (
                    None,
                    vec![
                        Td::Name(c.name.clone()),
                        Td::count(c.layer.map(u64::from)),
                        Td::Text(c.block_type.clone()),
                        Td::Text(c.metric.name().into()),
                        Td::num(Some(c.reference)),
                        Td::num(Some(c.value)),
                        Td::Text(describe_change(c)),
                        Td::Num(Some(c.relative), format!("{:.1}%", c.relative * 100.0)),
                    ],
                )
            })
            .collect();
        let headers = [
            "matrix",
            "layer",
            "block type",
            "metric",
            reference.label.as_str(),
            other.label.as_str(),
            "change",
            "relative",
        ];
        changed_body.push_str(&html::table(&headers, &rows, true));
        md.heading(3, &other.label);
        md.table(
            &headers,
            &top.iter()
                .map(|c| {
                    vec![
                        code(&c.name),
                        c.layer.map_or("–".into(), |l| l.to_string()),
                        c.block_type.clone(),
                        c.metric.name().into(),
                        format_number(c.reference),
                        format_number(c.value),
                        describe_change(c),
                        format!("{:.1}%", c.relative * 100.0),
                    ]
                })
                .collect::<Vec<_>>(),
        );
        let (only_ref, only_other) = unmatched(reference, other);
        unmatched_body.push_str(&format!(
            "<h3>{}</h3>{}",
            escape(&other.label),
            note(&format!(
                "{} only in {}, {} only in {}.",
                only_ref.len(),
                reference.label,
                only_other.len(),
                other.label
            ))
        ));
        for (names, side) in [(&only_ref, &reference.label), (&only_other, &other.label)] {
            if !names.is_empty() {
                unmatched_body.push_str(&format!(
                    "<p class=\"note\">only in {}:</p><p class=\"name\">{}{}</p>",
                    escape(side),
                    names
                        .iter()
                        .take(MAX_UNMATCHED)
                        .map(|n| escape(n))
                        .collect::<Vec<_>>()
                        .join("<br/>"),
                    if names.len() > MAX_UNMATCHED {
                        format!("<br/>… and {} more", names.len() - MAX_UNMATCHED)
                    } else {
                        String::new()
                    }
                ));
            }
        }
    }
    page.section("changed", "Most changed", changed_body);
    page.section("unmatched", "Unmatched", unmatched_body);

    ChartSection {
        id: "distributions",
        title: "Distributions",
        intro: "",
    }
    .add(
        &mut page,
        &mut md,
        charts::distributions::compare_distributions(inputs),
        |_| "Each model's histogram as shares of its own matrices.".into(),
        &mut all_charts,
    );

    for (i, input) in inputs.iter().enumerate() {
        if let Some(e) = &input.embedding {
            let (body, charts) = sections::embedding(e, &mut md, &format!("_{i}"));
            page.section(
                &format!("embedding-{i}"),
                &format!("Embedding: {}", input.label),
                body,
            );
            all_charts.extend(charts);
        }
    }

    Report {
        html: page.finish(),
        markdown: md.finish(),
        charts: all_charts,
        alerts,
    }
}
