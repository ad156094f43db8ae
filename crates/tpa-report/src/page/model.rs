//! The report of one model: overview, alerts, layer profiles, heatmap,
//! distributions, spectrum cards, tensor table, embedding.

use std::collections::HashMap;

use super::html::{self, Page, Td, escape, facts, figure, note};
use super::markdown::{Markdown, code};
use super::sections::ChartSection;
use super::{overview, relative_link, sections};
use crate::alerts::{self, Alert, Severity};
use crate::charts::{self, Chart, cards};
use crate::draw::scale::format_number;
use crate::input::{Input, Kind, Matrix};
use crate::metrics::Metric;
use crate::selection::{self, Chosen};
use crate::{Options, Report};

/// Alerts shown in the page's table; the rest are counted and in alerts.json.
pub const MAX_ALERT_ROWS: usize = 500;

pub fn report(input: &Input, options: &Options) -> Report {
    let matrices = &input.result.matrices;
    let alerts = alerts::detect(matrices);
    let title = options
        .title
        .clone()
        .unwrap_or_else(|| format!("{}: weight report", input.label));
    let subtitle = format!(
        "{} rows from {} · tpa-report {}",
        matrices.len(),
        input.result.path.display(),
        env!("CARGO_PKG_VERSION")
    );
    let mut page = Page::new(&title, &subtitle);
    let mut md = Markdown::default();
    md.heading(1, &title);
    md.paragraph(&subtitle);
    let mut all_charts: Vec<Chart> = Vec::new();

    // 1. Overview
    let facts_list = overview::facts(input);
    let statement = overview::sampling(input);
    let mut body = facts(&facts_list);
    body.push_str(&sections::strong(&statement));
    body.push_str(&sections::tallies_html(matrices));
    page.section("overview", "Overview", body);
    md.heading(2, "Overview");
    md.facts(&facts_list);
    md.paragraph(&statement);

    // 2. Alerts
    page.section("alerts", "Alerts", alerts_html(&alerts, None));
    sections::alerts_markdown(&mut md, &alerts);

    // 3. Layer profiles
    ChartSection {
        id: "profiles",
        title: "Layer profiles",
        intro: "Each line is one block type across the layers (Martin, Peng & Mahoney 2021, \
                Fig. 4). Hover over a point for its matrix and value.",
    }
    .add(
        &mut page,
        &mut md,
        charts::profiles::layer_profiles(matrices),
        |chart| profile_caption(&chart.name),
        &mut all_charts,
    );

    // 4. Heatmaps
    let heatmaps: Vec<(Metric, Chart)> = Metric::present(matrices)
        .into_iter()
        .filter_map(|m| Some((m, charts::heatmaps::heatmap(matrices, m)?)))
        .collect();
    if !heatmaps.is_empty() {
        let panels: Vec<(String, String, String)> = heatmaps
            .iter()
            .map(|(metric, chart)| {
                (
                    metric.key().to_owned(),
                    metric.name().to_owned(),
                    figure(
                        chart,
                        &format!(
                            "{} of every matrix, by layer and block type; experts averaged.",
                            metric.name()
                        ),
                    ),
                )
            })
            .collect();
        let body = html::switch("metric:", &panels);
        md.heading(2, "Heatmaps");
        for (_, chart) in &heatmaps {
            md.chart(&chart.name, &chart.scene.title);
        }
        page.section("heatmap", "Heatmap", body);
        all_charts.extend(heatmaps.into_iter().map(|(_, c)| c));
    }

    // 5. Distributions
    ChartSection {
        id: "distributions",
        title: "Distributions",
        intro: "",
    }
    .add(
        &mut page,
        &mut md,
        charts::distributions::distributions(matrices),
        |_| {
            "Matrices with both sides > 1; α only where there are ≥ 10 eigenvalues, as \
             WeightWatcher fits. Embeddings and the output head are marked, not counted \
             (Martin et al. 2021, Fig. 8)."
                .into()
        },
        &mut all_charts,
    );

    // 6. Spectrum cards
    let (body, cards) = cards_section(input, &alerts, options, &mut md);
    page.section("cards", "Spectrum cards", body);
    all_charts.extend(cards);

    // 7. Tensor table
    let body = tensor_table(input, &alerts, options);
    page.section("tensors", "Tensors", body);
    md.heading(2, "Tensors");
    md.paragraph(&format!(
        "Every row of the result is in report.html's table (and in {}).",
        relative_link(&input.result.path, &options.out_dir)
    ));

    // 8. Embedding
    if let Some(e) = &input.embedding {
        let (body, charts) = sections::embedding(e, &mut md, "");
        page.section("embedding", "Embedding", body);
        all_charts.extend(charts);
    }

    Report {
        html: page.finish(),
        markdown: md.finish(),
        charts: all_charts,
        alerts,
    }
}

fn profile_caption(name: &str) -> String {
    match name.trim_start_matches("profile_") {
        "alpha" => "α per layer; dashed: WeightWatcher's 2 and 6 (below 2 over-trained, above 6 under-trained).".into(),
        "rank_ratio" => "Numerical rank over min(m, n): 1 is full rank.".into(),
        "svd_90_percent_ratio" => "Share of the directions that hold 90% of Σσ².".into(),
        "stable_rank" => "Σσ² / σ₁²: how many directions carry the energy, robustly.".into(),
        "spectral_norm" => "σ₁, the largest singular value (log axis).".into(),
        _ => "Standard deviation of the stored values (log axis).".into(),
    }
}

/// The alert table, at most [`MAX_ALERT_ROWS`] rows; `model` adds a column.
pub fn alerts_html(alerts: &[Alert], model: Option<&str>) -> String {
    if alerts.is_empty() {
        return note("No alerts.");
    }
    let mut counts: HashMap<(Severity, &str), usize> = HashMap::new();
    for a in alerts {
        *counts.entry((a.severity, a.kind.as_str())).or_default() += 1;
    }
    let mut counted: Vec<_> = counts.into_iter().collect();
    counted.sort();
    let mut out = String::from("<p class=\"chips\">");
    for ((severity, kind), n) in counted {
        out.push_str(&format!(
            "<span>{} {kind} × {n}</span>",
            html::badge(severity.as_str())
        ));
    }
    out.push_str("</p>");
    let mut headers = sections::ALERT_COLUMNS.to_vec();
    if model.is_some() {
        headers.insert(0, "model");
    }
    let rows: Vec<(Option<&str>, Vec<Td>)> = alerts
        .iter()
        .take(MAX_ALERT_ROWS)
        .map(|a| {
            let mut cells = vec![
                Td::Html(html::badge(a.severity.as_str())),
                Td::Text(a.kind.as_str().into()),
                Td::Name(a.param_name.clone()),
                Td::num(a.value),
                Td::num(a.threshold),
                Td::Text(a.message.clone()),
            ];
            if model.is_some() {
                cells.insert(0, Td::Text(a.model.clone().unwrap_or_default()));
            }
            (Some(a.severity.as_str()), cells)
        })
        .collect();
    out.push_str(&html::table(&headers, &rows, true));
    if alerts.len() > MAX_ALERT_ROWS {
        out.push_str(&note(&format!(
            "{} more alerts are in alerts.json.",
            alerts.len() - MAX_ALERT_ROWS
        )));
    }
    out
}

fn cards_section(
    input: &Input,
    alerts: &[Alert],
    options: &Options,
    md: &mut Markdown,
) -> (String, Vec<Chart>) {
    md.heading(2, "Spectrum cards");
    let Some(spectra) = &input.spectra else {
        let text = "No spectra file: run tpa-transformer with --save-spectra FILE (or --report DIR), \
                    then pass --spectra FILE to tpa-report.";
        md.paragraph(text);
        return (note(text), Vec::new());
    };
    let (chosen, left_out) = selection::choose(&input.result.matrices, alerts, &options.cards);
    let mut body = note(&format!(
        "For each matrix: the log-log ESD of λ = σ² with WeightWatcher's power-law fit, its CCDF, and \
         the scree and cumulative-energy curve. Curves are drawn from at most {} points (log-spaced, \
         the largest values whole); every number is computed from all values.",
        cards::MAX_POINTS
    ));
    if left_out > 0 {
        body.push_str(&note(&format!(
            "{left_out} more matrices qualified (alerts); --cards all or --cards N draws more."
        )));
    }
    let mut charts = Vec::new();
    let mut missing = Vec::new();
    for (i, Chosen { matrix, reason }) in chosen.iter().enumerate() {
        let Some(sigma) = spectra.get(&matrix.name) else {
            missing.push(matrix.name.clone());
            continue;
        };
        let card_charts = cards::card(matrix, &sigma, i);
        body.push_str(&format!(
            "<div class=\"card\" id=\"card-{i}\"><h3 class=\"name\" title=\"{}\">{}</h3>{}<div class=\"row\">",
            escape(&matrix.name),
            escape(&crate::draw::text::fit(&matrix.name, 14.0, 900.0)),
            note(&format!("{reason} · {}", card_facts(matrix)))
        ));
        for chart in &card_charts {
            body.push_str(&figure(chart, ""));
        }
        body.push_str("</div></div>");
        md.paragraph(&format!(
            "- {} ({reason}): [ESD](charts/{}.svg) · [CCDF](charts/{}.svg) · [scree](charts/{}.svg)",
            code(&matrix.name),
            card_charts[0].name,
            card_charts[1].name,
            card_charts[2].name
        ));
        charts.extend(card_charts);
    }
    if !missing.is_empty() {
        body.push_str(&note(&format!(
            "{} chosen matrices are not in {} and have no card, e.g. {}.",
            missing.len(),
            spectra.path().display(),
            missing[0]
        )));
    }
    (body, charts)
}

fn card_facts(m: &Matrix) -> String {
    let opt = |v: Option<f64>| v.map_or("–".into(), format_number);
    format!(
        "{}×{} {} · rank {}/{} · 90% energy: {} · α {} · stable rank {} · σ₁ {} · κ {}",
        m.rows,
        m.cols,
        m.dtype,
        m.actual_rank.map_or("–".into(), |r| r.to_string()),
        m.design_rank,
        m.energy_rank_90.map_or("–".into(), |r| r.to_string()),
        opt(m.alpha),
        opt(m.stable_rank),
        opt(m.spectral_norm),
        opt(m.condition_number)
    )
}

/// Every row, or per-block-type summaries above the table limit.
fn tensor_table(input: &Input, alerts: &[Alert], options: &Options) -> String {
    let matrices = &input.result.matrices;
    let link = relative_link(&input.result.path, &options.out_dir);
    if matrices.len() > options.table_limit {
        let mut out = note(&format!(
            "{} rows are more than a page should hold ({}); here are summaries per block type. \
             Every row is in the result file:",
            matrices.len(),
            options.table_limit
        ));
        out.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape(&link),
            escape(&link)
        ));
        out.push_str(&sections::block_summary_html(matrices, alerts));
        return out;
    }
    let mut worst: HashMap<&str, (Severity, Vec<&str>)> = HashMap::new();
    for a in alerts {
        let entry = worst
            .entry(a.param_name.as_str())
            .or_insert((a.severity, Vec::new()));
        entry.0 = entry.0.min(a.severity);
        entry.1.push(a.kind.as_str());
    }
    let spectral = input.result.kind == Kind::Transformer;
    let mut headers = vec![
        "tensor",
        "layer",
        "block type",
        "shape",
        "dtype",
        "rank",
        "min(m, n)",
    ];
    if spectral {
        headers.extend(["90% ratio", "α", "stable rank", "σ₁", "κ"]);
    }
    headers.extend([
        "mean", "std", "min", "max", "sparsity", "NaN", "Inf", "alerts",
    ]);
    let rows: Vec<(Option<&str>, Vec<Td>)> = matrices
        .iter()
        .map(|m| {
            let alert = worst.get(m.name.as_str());
            let shape = format!(
                "[{}]",
                m.shape
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut cells = vec![
                Td::Name(m.name.clone()),
                Td::count(m.layer.map(u64::from)),
                Td::Text(m.block_type.clone()),
                Td::Text(shape),
                Td::Text(m.dtype.clone()),
                Td::count(m.actual_rank),
                Td::count(Some(m.design_rank)),
            ];
            if spectral {
                cells.extend([
                    Td::num(m.energy_ratio_90()),
                    Td::num(m.alpha),
                    Td::num(m.stable_rank),
                    Td::num(m.spectral_norm),
                    Td::num(m.condition_number),
                ]);
            }
            cells.extend([
                Td::num(m.mean),
                Td::num(m.std),
                Td::num(m.min),
                Td::num(m.max),
                Td::num(m.sparsity),
                Td::count(Some(m.nan_count)),
                Td::count(Some(m.inf_count)),
                Td::Text(alert.map(|a| a.1.join(", ")).unwrap_or_default()),
            ]);
            (alert.map(|a| a.0.as_str()), cells)
        })
        .collect();
    let mut out = note(&format!(
        "{} rows in the result's order; click a column to sort. Rows with alerts are tinted by their \
         most severe alert. The result file: ",
        matrices.len()
    ));
    out.push_str(&format!(
        "<a href=\"{}\">{}</a>",
        escape(&link),
        escape(&link)
    ));
    out.push_str(&html::table(&headers, &rows, true));
    out
}
