//! The F-ratio curve of an embedding sweep as PNG and SVG.

use std::path::Path;

use plotters::prelude::*;

use super::{output_error, write_atomically};
use crate::error::Result;

/// The font the PNG's text is drawn with, bundled so that plotting needs no
/// system fonts (DejaVu Sans, Bitstream Vera licence: assets/fonts/).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// One k of the curve.
pub struct CurvePoint {
    pub k: usize,
    pub f_ratio: Option<f64>,
    pub silhouette: Option<f64>,
}

/// Draws F against k (left axis) and the silhouette (right axis), with the
/// chosen k marked, to `png` and `svg`, each written atomically.
pub fn write_curve_plot(
    png: &Path,
    svg: &Path,
    points: &[CurvePoint],
    chosen_k: usize,
    title: &str,
) -> Result<()> {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let mut text = String::new();
    {
        let backend = SVGBackend::with_string(&mut text, (900, 540));
        draw(backend.into_drawing_area(), points, chosen_k, title)
            .map_err(|e| output_error(svg, e))?;
    }
    write_atomically(svg, |out| out.write_all(text.as_bytes()))?;

    let dir = super::prepare_output(png)?;
    let temp = tempfile::Builder::new()
        .prefix(".anova_curve.")
        .suffix(".png")
        .tempfile_in(dir)
        .map_err(|e| output_error(png, e))?;
    {
        let backend = BitMapBackend::new(temp.path(), (900, 540));
        let area = backend.into_drawing_area();
        draw(area.clone(), points, chosen_k, title).map_err(|e| output_error(png, e))?;
        area.present().map_err(|e| output_error(png, e))?;
    }
    super::publish(temp, png)
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    points: &[CurvePoint],
    chosen_k: usize,
    title: &str,
) -> std::result::Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    area.fill(&WHITE).map_err(|e| err(&e))?;
    let f: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.k as f64, p.f_ratio?)))
        .collect();
    let s: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.k as f64, p.silhouette?)))
        .collect();
    let k_max = points.iter().map(|p| p.k).max().unwrap_or(2).max(2) as f64;
    let f_max = f.iter().map(|p| p.1).fold(1.0, f64::max) * 1.05;
    let (s_lo, s_hi) = s
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let (s_lo, s_hi) = if s_lo.is_finite() {
        (s_lo.min(0.0) - 0.05, s_hi.max(0.0) + 0.05)
    } else {
        (-1.0, 1.0)
    };
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(60)
        .build_cartesian_2d(1.0..k_max + 1.0, 0.0..f_max)
        .map_err(|e| err(&e))?
        .set_secondary_coord(1.0..k_max + 1.0, s_lo..s_hi);
    chart
        .configure_mesh()
        .x_desc("k (clusters)")
        .y_desc("F-ratio (ANOVA)")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .configure_secondary_axes()
        .y_desc("silhouette (sampled)")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(f.iter().copied(), BLUE.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("F-ratio")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(f.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
        .map_err(|e| err(&e))?;
    chart
        .draw_secondary_series(LineSeries::new(s.iter().copied(), RED.stroke_width(1)))
        .map_err(|e| err(&e))?
        .label("silhouette")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED.stroke_width(1)));
    let chosen = chosen_k as f64;
    chart
        .draw_series(LineSeries::new(
            [(chosen, 0.0), (chosen, f_max)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| err(&e))?
        .label(format!("chosen k = {chosen_k}"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(1)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    Ok(())
}
