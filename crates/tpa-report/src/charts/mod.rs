//! The report's charts, each a [`Chart`]: a file name and a drawn scene.

pub mod cards;
pub mod compare;
pub mod diff;
pub mod distributions;
pub mod embedding;
pub mod heatmaps;
pub mod profiles;

use crate::draw::plot::LegendEntry;
use crate::draw::{Color, Marker, Scene, Stroke, palette};
use crate::layers::block_type_of;

/// A chart of the report.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem under `charts/` (`profile_alpha` → `charts/profile_alpha.svg`).
    pub name: String,
    /// The shapes, kept for the PNG.
    pub scene: Scene,
    /// The scene as SVG, rendered once for both the page and `charts/`.
    pub svg: String,
}

impl Chart {
    pub fn new(name: impl Into<String>, scene: Scene) -> Chart {
        Chart {
            name: name.into(),
            svg: crate::draw::svg::render(&scene),
            scene,
        }
    }
}

/// How a series is drawn: its block type's colour and marker, dashed for
/// routed experts and dotted for shared experts.
pub fn series_style(series: &str) -> (Stroke, Marker) {
    let (color, marker) = palette::block_type(block_type_of(series));
    let stroke = if series.starts_with("moe_expert:") {
        Stroke::dashed(color, 1.6)
    } else if series.starts_with("moe:") {
        Stroke::dotted(color, 1.8)
    } else {
        Stroke::solid(color, 1.6)
    };
    (stroke, marker)
}

/// A legend entry for a series.
pub fn series_legend(series: &str) -> LegendEntry {
    let (stroke, marker) = series_style(series);
    LegendEntry::line(series, stroke, Some(marker))
}

/// A light fill of `color` for bands.
pub fn band(color: Color) -> Color {
    color.with_alpha(0.16)
}
