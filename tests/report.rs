//! tpa-report end to end: planted faults found as their alert kinds, the
//! page self-contained and well-formed, the --fail-on gate, comparisons,
//! and the page rendered by a real browser (headless Chromium).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use tpa_testkit::architectures::{Dims, llama};
use tpa_testkit::{Dtype, Fill, TensorSpec, planted, write_model};

fn report(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpa-report"))
        .args(args)
        .output()
        .expect("the tpa-report binary runs")
}

const DIMS: Dims = Dims {
    vocab: 256,
    hidden: 64,
    intermediate: 128,
    layers: 6,
    kv_dim: 64,
};

/// A Llama-shaped model whose matrices all have the same heavy-tailed
/// spectrum (α ≈ 3, WeightWatcher's "well trained" range), each with its own
/// singular vectors, and norms that are not constant: a model with nothing
/// to report. `faults` then changes some tensors.
fn healthy(faults: impl Fn(&mut TensorSpec)) -> Vec<TensorSpec> {
    let mut tensors = llama(DIMS, Dtype::F32, &Fill::Pattern);
    for (i, t) in tensors.iter_mut().enumerate() {
        t.fill = match t.shape.as_slice() {
            [rows, cols] => Fill::Spectrum {
                sigma: planted::power_law((*rows).min(*cols), 1.0),
                seed: 1000 + i as u64,
            },
            _ => Fill::Values(
                (0..t.numel())
                    .map(|j| 1.0 + 0.05 * ((i * 31 + j) as f64).sin())
                    .collect(),
            ),
        };
        faults(t);
    }
    tensors
}

/// The planted faults of the issue, each in its own layer.
fn with_faults(t: &mut TensorSpec) {
    let values = t.values();
    match t.name.as_str() {
        "model.layers.1.self_attn.v_proj.weight" => {
            let mut v = values;
            v[17] = f64::NAN;
            t.fill = Fill::Values(v);
        }
        "model.layers.2.mlp.up_proj.weight" => t.fill = Fill::Values(vec![0.0; values.len()]),
        "model.layers.3.self_attn.k_proj.weight" => {
            // Rank 60 of 64: the four smallest directions removed, which
            // changes the norms and the energy ranks too little to matter.
            let Fill::Spectrum { sigma, seed } = &t.fill else {
                unreachable!()
            };
            let mut sigma = sigma.clone();
            sigma[60..].fill(0.0);
            t.fill = Fill::Spectrum { sigma, seed: *seed };
        }
        "model.layers.4.self_attn.q_proj.weight" => {
            t.fill = Fill::Values(values.iter().map(|x| x * 50.0).collect());
        }
        _ => {}
    }
}

/// Writes `tensors` as a model and returns its directory; `lm_head` is an
/// exact copy of the embedding when `tied`.
fn model(dir: &Path, name: &str, mut tensors: Vec<TensorSpec>, tied: bool) -> PathBuf {
    if tied {
        let embed = tensors
            .iter()
            .find(|t| t.name == "model.embed_tokens.weight")
            .unwrap()
            .values();
        let head = tensors
            .iter_mut()
            .find(|t| t.name == "lm_head.weight")
            .unwrap();
        head.fill = Fill::Values(embed);
    }
    let path = dir.join(name);
    write_model(&path, &tensors, 1).unwrap();
    path
}

/// tpa-transformer with --report into `dir/name-report`, returning the
/// report folder and the result.
fn transformer_report(model: &Path, out: &Path, report_dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report_dir.to_str().unwrap(),
        "--no-gpu",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    transformer(&args)
}

fn alerts(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("alerts.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["alerts"].as_array().unwrap().clone()
}

fn kinds_at_least_warning(alerts: &[serde_json::Value]) -> BTreeSet<(String, String)> {
    alerts
        .iter()
        .filter(|a| a["severity"] != "info")
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_owned(),
                a["param_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

struct Planted {
    _tmp: tempfile::TempDir,
    report: PathBuf,
    result: PathBuf,
    model: PathBuf,
}

fn planted_report() -> Planted {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path(), "faulty", healthy(with_faults), true);
    let result = tmp.path().join("faulty.csv");
    let report = tmp.path().join("faulty-report");
    let out = transformer_report(&model, &result, &report, &[]);
    assert_success(&out);
    Planted {
        _tmp: tmp,
        report,
        result,
        model,
    }
}

#[test]
fn a_healthy_model_raises_no_alert() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path(), "healthy", healthy(|_| {}), false);
    let result = tmp.path().join("healthy.csv");
    let dir = tmp.path().join("report");
    let out = transformer_report(&model, &result, &dir, &["--fail-on", "info"]);
    assert_success(&out);
    assert_eq!(alerts(&dir), Vec::<serde_json::Value>::new());
    // The planted spectrum sits in WeightWatcher's 2..6 band.
    let table = Table::read(&result);
    let alpha = float(&table.row("model.layers.0.self_attn.q_proj.weight")["alpha"]);
    assert!((2.0..6.0).contains(&alpha), "α = {alpha}");
}

#[test]
fn planted_faults_appear_as_their_alert_kinds_and_nothing_else() {
    let p = planted_report();
    let alerts = alerts(&p.report);
    let expected: BTreeSet<(String, String)> = [
        ("nan", "model.layers.1.self_attn.v_proj.weight"),
        ("zero_tensor", "model.layers.2.mlp.up_proj.weight"),
        ("rank_deficient", "model.layers.3.self_attn.k_proj.weight"),
        ("layer_outlier", "model.layers.4.self_attn.q_proj.weight"),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n.to_owned()))
    .collect();
    assert_eq!(kinds_at_least_warning(&alerts), expected, "{alerts:#?}");
    let info: Vec<_> = alerts.iter().filter(|a| a["severity"] == "info").collect();
    assert_eq!(info.len(), 1, "{info:#?}");
    assert_eq!(info[0]["kind"], "duplicate_tensor");
    assert_eq!(info[0]["param_name"], "lm_head.weight");
    assert!(
        info[0]["message"]
            .as_str()
            .unwrap()
            .contains("model.embed_tokens.weight")
    );

    let find = |kind: &str| alerts.iter().find(|a| a["kind"] == kind).unwrap();
    assert_eq!(find("nan")["severity"], "error");
    assert_eq!(find("nan")["value"], 1.0);
    assert_eq!(find("rank_deficient")["value"], 60.0);
    assert_eq!(find("rank_deficient")["threshold"], 64.0);
    // ×50 shows in both norms (equally); either may be the one named.
    let outlier = find("layer_outlier");
    let message = outlier["message"].as_str().unwrap();
    assert!(
        message.contains("norm") && message.contains(" is 50× the median"),
        "{outlier}"
    );
    assert!(outlier["value"].as_f64().unwrap() > outlier["threshold"].as_f64().unwrap());
    // Every alert has exactly the documented fields.
    for a in &alerts {
        let keys: BTreeSet<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
        let documented = [
            "kind",
            "severity",
            "param_name",
            "value",
            "threshold",
            "message",
        ];
        assert_eq!(keys, BTreeSet::from(documented));
    }
}

#[test]
fn the_spectra_and_the_digests_are_kept_for_the_report() {
    let p = planted_report();
    assert!(p.report.join("spectra.safetensors").is_file());
    let table = Table::read(&p.result);
    let digest = |name: &str| table.row(name)["digest"].clone();
    assert_eq!(
        digest("lm_head.weight"),
        digest("model.embed_tokens.weight")
    );
    assert_ne!(
        digest("model.layers.0.self_attn.q_proj.weight"),
        digest("model.layers.1.self_attn.q_proj.weight")
    );
    assert_eq!(digest("lm_head.weight").len(), 32);
    assert!(!table.row("model.layers.0.self_attn.q_proj.weight")["alpha_xmin"].is_empty());
}

/// Elements of the page that load something, as (attribute or rule, value).
fn network_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = html.to_ascii_lowercase();
    for pattern in ["src=", "<link", "url(", "@import"] {
        let mut at = 0;
        while let Some(i) = lower[at..].find(pattern) {
            let start = at + i;
            found.push(lower[start..(start + 120).min(lower.len())].to_owned());
            at = start + pattern.len();
        }
    }
    found
}

#[test]
fn the_page_is_well_formed_self_contained_and_has_every_chart() {
    let p = planted_report();
    let html = std::fs::read_to_string(p.report.join("report.html")).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("report.html is well-formed");
    // Nothing is loaded from anywhere: no src, <link>, url() or @import at all.
    let refs = network_references(&html);
    assert!(refs.is_empty(), "the page loads something: {refs:?}");
    for node in doc.descendants().filter(|n| n.is_element()) {
        for attr in node.attributes() {
            let v = attr.value();
            let external = v.starts_with("//") || v.starts_with("http:") || v.starts_with("https:");
            let is_namespace = attr.name() == "xmlns";
            assert!(
                !external || is_namespace,
                "<{} {}={v}>",
                node.tag_name().name(),
                attr.name()
            );
        }
    }
    let ids: BTreeSet<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("id"))
        .collect();
    for id in [
        "overview",
        "alerts",
        "profiles",
        "heatmap",
        "distributions",
        "cards",
        "tensors",
        "fig-profile_alpha",
        "fig-profile_rank_ratio",
        "fig-profile_svd_90_percent_ratio",
        "fig-profile_stable_rank",
        "fig-profile_spectral_norm",
        "fig-heatmap_alpha",
        "fig-distribution_alpha",
        "fig-distribution_svd_90_percent_ratio",
        "fig-card_000_esd",
        "fig-card_000_ccdf",
        "fig-card_000_scree",
    ] {
        assert!(ids.contains(id), "no element #{id}");
    }
    let svgs = doc.descendants().filter(|n| n.has_tag_name("svg")).count();
    assert!(svgs > 20, "{svgs} inline charts");
    // Every alerted matrix with a spectrum has a card: the rank-deficient one,
    // the outlier and the tied lm_head.
    for name in [
        "model.layers.3.self_attn.k_proj.weight",
        "model.layers.4.self_attn.q_proj.weight",
        "lm_head.weight",
    ] {
        assert!(
            doc.descendants().any(|n| n.has_class("card")
                && n.descendants().any(|d| d.attribute("title") == Some(name))),
            "no card for {name}"
        );
    }
    // Each standalone chart is an SVG document of its own.
    let charts = files_in(&p.report.join("charts"));
    assert!(charts.len() > 20);
    for chart in charts {
        let text = std::fs::read_to_string(&chart).unwrap();
        let svg = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", chart.display()));
        assert_eq!(svg.root_element().tag_name().name(), "svg");
    }
    let md = std::fs::read_to_string(p.report.join("report.md")).unwrap();
    assert!(
        md.contains("![α per layer](charts/profile_alpha.svg)"),
        "{md}"
    );
    assert!(
        md.contains("| error | nan | `model.layers.1.self_attn.v_proj.weight` |"),
        "{md}"
    );
}

trait HasClass {
    fn has_class(&self, class: &str) -> bool;
}

impl HasClass for roxmltree::Node<'_, '_> {
    fn has_class(&self, class: &str) -> bool {
        self.attribute("class")
            .is_some_and(|c| c.split_whitespace().any(|x| x == class))
    }
}

#[test]
fn fail_on_exits_with_3_after_writing_the_report() {
    let p = planted_report();
    let result = p.result.to_str().unwrap();
    let code = |fail_on: &str| {
        let out_dir = p
            .report
            .with_file_name(format!("gate-{}", fail_on.replace(',', "-")));
        let out = report(&[
            result,
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
            "--fail-on",
            fail_on,
        ]);
        let written = out_dir.join("report.html").is_file();
        (out.status.code(), written, stderr(&out))
    };
    for kinds in [
        "nan",
        "zero_tensor,inf",
        "layer_outlier",
        "error",
        "warning",
        "info",
        "duplicate_tensor",
    ] {
        let (status, written, err) = code(kinds);
        assert_eq!(status, Some(3), "--fail-on {kinds}: {err}");
        assert!(written, "--fail-on {kinds}: the report is written first");
        assert!(err.contains("matched --fail-on"), "{err}");
    }
    for kinds in ["inf", "alpha_low,alpha_high", "fit_failed,constant_tensor"] {
        let (status, _, err) = code(kinds);
        assert_eq!(status, Some(0), "--fail-on {kinds}: {err}");
    }
    let (status, _, err) = code("nan,bogus");
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("bogus"), "{err}");
    // The gate also works on the run itself.
    let tmp = tempfile::tempdir().unwrap();
    let out = analyze(&[
        "--model-path",
        p.model.to_str().unwrap(),
        "--out",
        tmp.path().join("a.csv").to_str().unwrap(),
        "--no-rank",
        "--quiet",
        "--report",
        tmp.path().join("r").to_str().unwrap(),
        "--fail-on",
        "nan",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let statistics = alerts(&tmp.path().join("r"));
    // Without ranks or spectra, the statistics alerts alone.
    let kinds: BTreeSet<&str> = statistics
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["nan", "zero_tensor", "duplicate_tensor"])
    );
}

#[test]
fn a_comparison_of_three_models_matches_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let base = model(tmp.path(), "base", healthy(|_| {}), false);
    // The tuned model: one matrix scaled by 3; the pruned one lacks a tensor.
    let tuned = model(
        tmp.path(),
        "tuned",
        healthy(|t| {
            if t.name == "model.layers.2.mlp.down_proj.weight" {
                t.fill = Fill::Values(t.values().iter().map(|x| x * 3.0).collect());
            }
        }),
        false,
    );
    let mut pruned_tensors = healthy(|_| {});
    pruned_tensors.retain(|t| t.name != "model.layers.5.mlp.gate_proj.weight");
    let pruned = model(tmp.path(), "pruned", pruned_tensors, false);
    let mut results = Vec::new();
    for (name, dir) in [("base", &base), ("tuned", &tuned), ("pruned", &pruned)] {
        let out = tmp.path().join(format!("{name}.json"));
        let run = transformer(&[
            "--model-path",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-gpu",
            "--quiet",
        ]);
        assert_success(&run);
        results.push(out);
    }
    let dir = tmp.path().join("compare");
    let out = report(&[
        results[0].to_str().unwrap(),
        results[1].to_str().unwrap(),
        results[2].to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_success(&out);
    assert!(stdout(&out).contains("report.html"), "{}", stdout(&out));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("well-formed");
    // Labels come from the model folders.
    for label in ["base", "tuned", "pruned"] {
        assert!(
            html.contains(&format!("<th>{label}</th>")),
            "no column for {label}"
        );
    }
    for id in [
        "fig-compare_profile_alpha",
        "fig-scatter_spectral_norm_1_tuned",
        "fig-delta_spectral_norm_2_pruned",
        "fig-compare_distribution_alpha",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no {id}");
    }
    // The scaled matrix tops the most-changed list, by its ×3 norms.
    let changed = html.split("<section id=\"changed\">").nth(1).unwrap();
    let first_row = changed.split("<tbody><tr>").nth(1).unwrap();
    assert!(
        first_row.contains("model.layers.2.mlp.down_proj.weight"),
        "{}",
        &first_row[..400.min(first_row.len())]
    );
    assert!(
        first_row.contains("200.0%"),
        "{}",
        &first_row[..400.min(first_row.len())]
    );
    // The missing tensor is listed as unmatched.
    let unmatched = html.split("<section id=\"unmatched\">").nth(1).unwrap();
    assert!(
        unmatched.contains("1 only in base, 0 only in pruned"),
        "{unmatched}"
    );
    assert!(unmatched.contains("model.layers.5.mlp.gate_proj.weight"));
    // Alerts carry the model they are about: the scaled matrix is an outlier of tuned.
    let alerts = alerts(&dir);
    assert!(
        alerts.iter().any(|a| a["model"] == "tuned"
            && a["kind"] == "layer_outlier"
            && a["param_name"] == "model.layers.2.mlp.down_proj.weight"),
        "{alerts:#?}"
    );
    assert!(alerts.iter().all(|a| a["model"] != "base"));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.csv");
    let out = report(&[
        missing.to_str().unwrap(),
        "--out",
        tmp.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.csv"), "{}", stderr(&out));
    let not_tpa = tmp.path().join("other.csv");
    std::fs::write(&not_tpa, "a,b\n1,2\n").unwrap();
    let out = report(&[
        not_tpa.to_str().unwrap(),
        "--out",
        tmp.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a tpa-transformer or tpa-analyze result"),
        "{}",
        stderr(&out)
    );
    let bad_number = tmp.path().join("bad.csv");
    std::fs::write(&bad_number, "param_name,actual_rank,alpha\nw,3,abc\n").unwrap();
    let out = report(&[
        bad_number.to_str().unwrap(),
        "--out",
        tmp.path().join("r").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad.csv") && err.contains("row 1") && err.contains("alpha"),
        "{err}"
    );
    assert!(!tmp.path().join("r").join("report.html").exists());
}

/// Debian's Chromium, or `None` when it is not installed (CI installs it:
/// a missing browser there fails the test instead of skipping it).
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| Path::new("/usr/bin").join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Chromium is missing: run scripts/install-chromium.sh"
        );
        eprintln!("skipping: no Chromium (run scripts/install-chromium.sh)");
    }
    found
}

fn headless(browser: &Path, profile: &Path, extra: &[&str], page: &Path) -> Output {
    let mut command = Command::new(browser);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        &format!("--user-data-dir={}", profile.display()),
    ]);
    command.args(extra);
    command.arg(format!("file://{}", page.display()));
    command.output().expect("chromium runs")
}

#[test]
fn a_real_browser_renders_the_charts_without_script_errors() {
    let Some(browser) = chromium() else { return };
    let p = planted_report();
    let page = std::fs::canonicalize(p.report.join("report.html")).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let dom = headless(&browser, profile.path(), &["--dump-dom"], &page);
    assert!(dom.status.success(), "{}", stderr(&dom));
    let rendered = stdout(&dom);
    let log = stderr(&dom);
    // The script ran to its end, and nothing threw.
    assert!(
        rendered.contains("data-js=\"ready\""),
        "the page's script did not finish"
    );
    assert!(!log.contains("Uncaught"), "JavaScript error: {log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "{console:?}");
    // The charts are in the rendered DOM; with scripts, one heatmap shows.
    for id in [
        "fig-profile_alpha",
        "fig-heatmap_alpha",
        "fig-distribution_alpha",
        "fig-card_000_esd",
    ] {
        assert!(
            rendered.contains(&format!("id=\"{id}\"")),
            "no {id} in the DOM"
        );
    }
    assert!(rendered.matches("<svg").count() > 20);
    assert!(
        rendered.contains("class=\"panel\" data-key=\"rank_ratio\" hidden=\"\""),
        "the heatmap switch did not run"
    );
    let shot = profile.path().join("shot.png");
    let out = headless(
        &browser,
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400",
        ],
        &page,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 50_000, "a blank page? {} bytes", png.len());
}

#[test]
fn the_embedding_section_shows_the_sweep_and_its_curve_reads_well() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model(tmp.path(), "healthy", healthy(|_| {}), false);
    let sweep = tmp.path().join("embedding");
    let out = Command::new(env!("CARGO_BIN_EXE_tpa-embedding"))
        .args([
            "--model-path",
            model.to_str().unwrap(),
            "--output-dir",
            sweep.to_str().unwrap(),
        ])
        .args([
            "--max-k",
            "6",
            "--n-init",
            "2",
            "--skip-representatives",
            "--no-gpu",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    // tpa-embedding's own curve, in the report's style: integer k ticks, no "-0".
    let curve = std::fs::read_to_string(sweep.join("anova_curve.svg")).unwrap();
    let doc = roxmltree::Document::parse(&curve).unwrap();
    let labels: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for k in ["1", "2", "3", "4", "5", "6"] {
        assert!(labels.contains(&k), "no k tick {k} in {labels:?}");
    }
    assert!(
        !labels
            .iter()
            .any(|l| *l == "1.0" || *l == "-0.0" || *l == "-0"),
        "{labels:?}"
    );
    assert!(
        labels.iter().any(|l| l.starts_with("chosen k = ")),
        "{labels:?}"
    );

    let result = tmp.path().join("healthy.csv");
    assert_success(&transformer(&[
        "--model-path",
        model.to_str().unwrap(),
        "--out",
        result.to_str().unwrap(),
        "--no-gpu",
        "--quiet",
    ]));
    let dir = tmp.path().join("report");
    let out = report(&[
        result.to_str().unwrap(),
        "--embedding",
        sweep.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
        "--png",
    ]);
    assert_success(&out);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for id in ["embedding", "fig-embedding_curve", "fig-embedding_sizes"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no {id}");
    }
    assert!(html.contains("silhouettes are computed on a seeded sample"));
    // --png: every chart also as a PNG.
    let charts = files_in(&dir.join("charts"));
    let svgs = charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .count();
    let pngs = charts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .count();
    assert_eq!(svgs, pngs);
    assert!(pngs > 5);
}
