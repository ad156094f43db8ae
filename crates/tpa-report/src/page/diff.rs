//! The report of a `tpa-diff` result: what fine-tuning changed, where, how
//! low-rank the change is, and which matrices grew new directions.

use super::html::{Page, Td, escape, facts, table};
use super::markdown::{Markdown, code};
use super::sections::ChartSection;
use crate::charts::{Chart, diff as charts};
use crate::input::{DiffMatrix, DiffResult};
use crate::{Options, Report};

/// Rows of the "most changed" table.
pub const TOP: usize = 20;

pub fn report(diff: &DiffResult, options: &Options) -> Report {
    let label = label(diff);
    let title = options.title.clone().unwrap_or_else(|| {
        // Every changed matrix stored in another type: a quantization.
        let mut changed = diff
            .compared()
            .filter(|r| r.rel_fro.is_some_and(|v| v > 0.0))
            .peekable();
        let quantized = changed.peek().is_some() && changed.all(|r| r.requantized);
        let what = if quantized {
            "quantization"
        } else {
            "fine-tuning"
        };
        format!("{label}: what {what} changed")
    });
    let subtitle = format!(
        "{} rows from {} · tpa-report {}",
        diff.rows.len(),
        diff.path.display(),
        env!("CARGO_PKG_VERSION")
    );
    let mut page = Page::new(&title, &subtitle);
    let mut md = Markdown::default();
    md.heading(1, &title);
    md.paragraph(&subtitle);
    let mut all: Vec<Chart> = Vec::new();

    let facts_list = overview(diff);
    page.section("overview", "Overview", facts(&facts_list));
    md.heading(2, "Overview");
    md.facts(&facts_list);

    let heatmaps: Vec<Chart> = [
        charts::quantization_damage(diff),
        charts::rel_fro_heatmap(diff),
        charts::energy_rank_heatmap(diff),
    ]
    .into_iter()
    .flatten()
    .collect();
    ChartSection {
        id: "where",
        title: "Where the weights changed",
        intro: "Matrices matched by name; experts of a layer averaged. ΔW = W_model − W_base, \
                exact in f64 from the stored values.",
    }
    .add(
        &mut page,
        &mut md,
        heatmaps,
        |chart| match chart.name.as_str() {
            "diff_rel_fro" => {
                "‖ΔW‖_F / ‖W_base‖_F of every matrix, by layer and block type.".into()
            }
            "diff_sqnr" => "The signal-to-quantization-noise ratio 10·log10(‖W‖²/‖ΔW‖²) of \
                            every matrix the model stores in another type than the base: the \
                            layers that lost most are the darkest (lowest)."
                .into(),
            _ => "How many of ΔW's singular directions hold 90% of its energy, over the most \
                  it could have."
                .into(),
        },
        &mut all,
    );
    ChartSection {
        id: "lora",
        title: "Low-rank structure of the change",
        intro: "Read across: the rank a LoRA adapter would need for each block type to keep \
                the change (mergekit-extract-lora's loss at that rank).",
    }
    .add(
        &mut page,
        &mut md,
        charts::lora_fit_curves(diff).into_iter().collect(),
        |_| "Median over the block type's matrices; hover for the count and the worst matrix's value.".into(),
        &mut all,
    );
    let threshold = diff
        .summary
        .as_ref()
        .and_then(|s| s.get("intruder_threshold")?.as_f64());
    ChartSection {
        id: "intruders",
        title: "Intruder dimensions",
        intro: "LoRA fine-tunes grow new high-ranking singular vectors that full fine-tuning \
                does not (Shuttleworth et al., \"LoRA vs full fine-tuning: an illusion of \
                equivalence\").",
    }
    .add(
        &mut page,
        &mut md,
        charts::intruders_by_layer(diff, threshold)
            .into_iter()
            .collect(),
        |_| {
            "Counted over the model's top-k left singular vectors of every matrix of the layer."
                .into()
        },
        &mut all,
    );

    let (headers, html_rows, md_rows) = top_table(diff);
    if !html_rows.is_empty() {
        let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        page.section(
            "top",
            &format!("The {TOP} most changed matrices"),
            table(&header_refs, &html_rows, true),
        );
        md.heading(2, &format!("The {TOP} most changed matrices"));
        md.table(&header_refs, &md_rows);
    }
    Report {
        html: page.finish(),
        markdown: md.finish(),
        charts: all,
        alerts: Vec::new(),
    }
}

/// `model_id`, else the model folder's (or adapter's) name.
fn label(diff: &DiffResult) -> String {
    if !diff.model_id.is_empty() {
        return diff.model_id.clone();
    }
    let path = std::path::Path::new(&diff.model_path);
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

fn overview(diff: &DiffResult) -> Vec<(String, String)> {
    let count = |status: &str| diff.rows.iter().filter(|r| r.status == status).count();
    let mut list = vec![
        ("base".to_owned(), diff.base_path.clone()),
        ("model".to_owned(), diff.model_path.clone()),
        (
            "matrices compared".to_owned(),
            count("compared").to_string(),
        ),
        (
            "unchanged (ΔW = 0)".to_owned(),
            diff.compared()
                .filter(|r| r.rel_fro == Some(0.0))
                .count()
                .to_string(),
        ),
        (
            "only in the base".to_owned(),
            count("only_in_base").to_string(),
        ),
        (
            "only in the model".to_owned(),
            count("only_in_model").to_string(),
        ),
        (
            "shape mismatches".to_owned(),
            count("shape_mismatch").to_string(),
        ),
    ];
    if let Some(summary) = &diff.summary {
        for (key, label) in [
            ("adapter", "adapter"),
            ("top_k", "top-k singular vectors compared"),
            ("intruder_threshold", "intruder threshold (|cos|)"),
            ("rank_rtol", "rank tolerance (relative)"),
            ("created_at", "created"),
        ] {
            match summary.get(key) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(s)) => list.push((label.into(), s.clone())),
                Some(v) => list.push((label.into(), v.to_string())),
            }
        }
    }
    list
}

type Rows = (
    Vec<String>,
    Vec<(Option<&'static str>, Vec<Td>)>,
    Vec<Vec<String>>,
);

/// The [`TOP`] compared matrices of largest rel_fro.
fn top_table(diff: &DiffResult) -> Rows {
    let mut rows: Vec<&DiffMatrix> = diff.compared().filter(|r| r.rel_fro.is_some()).collect();
    rows.sort_by(|a, b| {
        b.rel_fro
            .unwrap_or(0.0)
            .total_cmp(&a.rel_fro.unwrap_or(0.0))
    });
    rows.truncate(TOP);
    let ranks: Vec<u64> = rows
        .first()
        .map(|r| r.lora_fit.iter().map(|(k, _)| *k).collect())
        .unwrap_or_default();
    let mut headers: Vec<String> = [
        "matrix",
        "layer",
        "block type",
        "shape",
        "rel_fro",
        "rel_spec",
        "ΔW rank",
        "ΔW 90% rank",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    headers.extend(ranks.iter().map(|r| format!("lora_fit_err_{r}")));
    if let Some(k) = diff.top_k {
        headers.push(format!("overlap (top {k})"));
        headers.push(format!("intruders (top {k})"));
    }
    let mut html_rows = Vec::new();
    let mut md_rows = Vec::new();
    for r in rows {
        let m = &r.matrix;
        let mut cells = vec![
            Td::Name(m.name.clone()),
            Td::count(m.layer.map(u64::from)),
            Td::Text(m.block_type.clone()),
            Td::Text(format!("{} × {}", m.rows, m.cols)),
            Td::num(r.rel_fro),
            Td::num(r.rel_spec),
            Td::count(r.delta_rank),
            Td::count(r.delta_energy_rank_90),
        ];
        for rank in &ranks {
            cells.push(Td::num(
                r.lora_fit.iter().find(|(k, _)| k == rank).map(|(_, e)| *e),
            ));
        }
        if diff.top_k.is_some() {
            cells.push(Td::num(r.overlap_left));
            cells.push(Td::count(r.intruders));
        }
        md_rows.push(
            cells
                .iter()
                .map(|c| match c {
                    Td::Name(n) => code(n),
                    Td::Text(t) | Td::Num(_, t) => t.clone(),
                    Td::Html(h) => escape(h),
                })
                .collect(),
        );
        html_rows.push((None, cells));
    }
    (headers, html_rows, md_rows)
}
