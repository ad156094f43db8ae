//! Writing a report into its folder. Each file is written atomically; the
//! charts are written into a fresh folder that then replaces `charts/`, so a
//! re-run never leaves charts of an earlier report behind.

use std::path::Path;

use serde::Serialize;
use tpa_core::writers::write_atomically;

use crate::Report;
use crate::draw::{png, svg};
use crate::error::{Result, input};

#[derive(Serialize)]
struct AlertsFile<'a> {
    alerts: &'a [crate::alerts::Alert],
}

/// Writes `report.html`, `report.md`, `alerts.json` and `charts/` (SVG,
/// and PNG with `png`) into `dir`, creating it.
pub fn write(report: &Report, dir: &Path, with_png: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| input(dir, format!("cannot create it: {e}")))?;
    let fresh = tempfile::Builder::new()
        .prefix(".charts.")
        .tempdir_in(dir)
        .map_err(|e| input(dir, e))?;
    for chart in &report.charts {
        let svg_path = fresh.path().join(format!("{}.svg", chart.name));
        std::fs::write(&svg_path, &chart.svg).map_err(|e| input(&svg_path, e))?;
        if with_png {
            let png_path = fresh.path().join(format!("{}.png", chart.name));
            let bytes = png::render(&chart.scene).map_err(|e| input(&png_path, e))?;
            std::fs::write(&png_path, bytes).map_err(|e| input(&png_path, e))?;
        }
    }
    let charts = dir.join("charts");
    let fresh = fresh.keep();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755));
    }
    if charts.exists() {
        let old = tempfile::Builder::new()
            .prefix(".charts-old.")
            .tempdir_in(dir)
            .map_err(|e| input(dir, e))?;
        let parked = old.path().join("charts");
        std::fs::rename(&charts, &parked).map_err(|e| input(&charts, e))?;
        std::fs::rename(&fresh, &charts).map_err(|e| input(&charts, e))?;
        drop(old);
    } else {
        std::fs::rename(&fresh, &charts).map_err(|e| input(&charts, e))?;
    }
    let alerts = serde_json::to_vec_pretty(&AlertsFile {
        alerts: &report.alerts,
    })
    .map_err(|e| input(dir, e))?;
    write_atomically(&dir.join("alerts.json"), |out| out.write_all(&alerts))?;
    write_atomically(&dir.join("report.md"), |out| {
        out.write_all(report.markdown.as_bytes())
    })?;
    write_atomically(&dir.join("report.html"), |out| {
        out.write_all(report.html.as_bytes())
    })?;
    Ok(())
}

/// Writes one chart as `svg` and, when given, `png`, each atomically.
pub fn write_chart(
    scene: &crate::draw::Scene,
    svg_path: &Path,
    png_path: Option<&Path>,
) -> Result<()> {
    write_atomically(svg_path, |out| out.write_all(svg::render(scene).as_bytes()))?;
    if let Some(path) = png_path {
        let bytes = png::render(scene).map_err(|e| input(path, e))?;
        write_atomically(path, |out| out.write_all(&bytes))?;
    }
    Ok(())
}
