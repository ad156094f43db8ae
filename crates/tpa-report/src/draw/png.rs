//! A [`Scene`] rasterised to PNG with plotters' bitmap backend and the
//! bundled font: no system fonts, no system libraries.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color as _, FontTransform, RGBAColor};

use super::text::FONT_BYTES;
use super::{Anchor, Color, Item, Scene, Stroke};

/// Pixels per scene unit: PNGs are drawn at twice the SVG's size, for
/// sharp lines on high-density screens and in slides.
pub const SCALE: f64 = 2.0;

/// The scene as PNG bytes, `SCALE` times its size.
pub fn render(scene: &Scene) -> Result<Vec<u8>, String> {
    register_font();
    let (w, h) = (
        (scene.width * SCALE).ceil() as u32,
        (scene.height * SCALE).ceil() as u32,
    );
    let mut pixels = vec![255u8; w as usize * h as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        for item in &scene.items {
            draw(&area, item)?;
        }
        area.present().map_err(|e| e.to_string())?;
    }
    encode(&pixels, w, h)
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // Only fails on a broken font, which the bundled one is not.
            let _ = plotters::style::register_font("sans-serif", style, FONT_BYTES);
        }
    });
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn px(v: f64) -> i32 {
    (v * SCALE).round() as i32
}

fn rgba(c: Color) -> RGBAColor {
    RGBAColor(c.r, c.g, c.b, c.alpha)
}

fn draw(area: &Area<'_>, item: &Item) -> DrawResult {
    match item {
        Item::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
            ..
        } => {
            let corners = [(px(*x), px(*y)), (px(x + w), px(y + h))];
            if let Some(fill) = fill {
                area.draw(&Rectangle::new(corners, rgba(*fill).filled()))
                    .map_err(err)?;
            }
            if let Some(s) = stroke {
                let (x0, y0) = (*x, *y);
                let outline = [
                    (x0, y0),
                    (x0 + w, y0),
                    (x0 + w, y0 + h),
                    (x0, y0 + h),
                    (x0, y0),
                ];
                stroke_path(area, &outline, s)?;
            }
            Ok(())
        }
        Item::Path {
            points,
            stroke,
            fill,
        } => {
            if let Some(fill) = fill {
                let vertices: Vec<(i32, i32)> =
                    points.iter().map(|&(x, y)| (px(x), px(y))).collect();
                area.draw(&Polygon::new(vertices, rgba(*fill).filled()))
                    .map_err(err)?;
            }
            if let Some(s) = stroke {
                let mut outline = points.clone();
                if fill.is_some() && !points.is_empty() {
                    outline.push(points[0]);
                }
                stroke_path(area, &outline, s)?;
            }
            Ok(())
        }
        Item::Point {
            x,
            y,
            r,
            marker,
            fill,
            ..
        } => match marker.polygon(*x, *y, *r) {
            None => area
                .draw(&Circle::new(
                    (px(*x), px(*y)),
                    (r * SCALE).round() as i32,
                    rgba(*fill).filled(),
                ))
                .map_err(err),
            Some(points) => {
                let vertices: Vec<(i32, i32)> =
                    points.iter().map(|&(x, y)| (px(x), px(y))).collect();
                area.draw(&Polygon::new(vertices, rgba(*fill).filled()))
                    .map_err(err)
            }
        },
        Item::Text {
            x,
            y,
            text,
            size,
            anchor,
            color,
            bold,
            vertical,
            ..
        } => {
            let h = match anchor {
                Anchor::Start => HPos::Left,
                Anchor::Middle => HPos::Center,
                Anchor::End => HPos::Right,
            };
            let style = if *bold {
                FontStyle::Bold
            } else {
                FontStyle::Normal
            };
            let mut font = ("sans-serif", size * SCALE, style)
                .into_font()
                .color(&rgba(*color))
                .pos(Pos::new(h, VPos::Center));
            // SVG places text by its baseline; the centre of lower-case
            // letters sits about 0.3 em above it.
            let lift = size * 0.3;
            let (tx, ty) = if *vertical {
                font = font.transform(FontTransform::Rotate270);
                (x - lift, *y)
            } else {
                (*x, y - lift)
            };
            area.draw(&Text::new(text.clone(), (px(tx), px(ty)), font))
                .map_err(err)
        }
    }
}

fn stroke_path(area: &Area<'_>, points: &[(f64, f64)], stroke: &Stroke) -> DrawResult {
    let style = rgba(stroke.color).stroke_width((stroke.width * SCALE).round().max(1.0) as u32);
    let pieces = match stroke.dash {
        None => vec![points.to_vec()],
        Some((dash, gap)) => dashes(points, dash, gap),
    };
    for piece in pieces {
        let piece: Vec<(i32, i32)> = piece.iter().map(|&(x, y)| (px(x), px(y))).collect();
        area.draw(&PathElement::new(piece, style)).map_err(err)?;
    }
    Ok(())
}

/// Splits a polyline into its dashes.
fn dashes(points: &[(f64, f64)], dash: f64, gap: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let (mut on, mut left) = (true, dash);
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let length = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let mut at = 0.0;
        if on {
            current.push((x0, y0));
        }
        while length - at > left {
            at += left;
            let p = (x0 + (x1 - x0) * at / length, y0 + (y1 - y0) * at / length);
            if on {
                current.push(p);
                out.push(std::mem::take(&mut current));
            } else {
                current.push(p);
            }
            on = !on;
            left = if on { dash } else { gap };
        }
        left -= length - at;
        if on {
            current.push((x1, y1));
        } else {
            current.clear();
        }
    }
    if current.len() > 1 {
        out.push(current);
    }
    out
}

fn encode(pixels: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(pixels).map_err(|e| e.to_string())?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashes_cover_about_the_dash_share_of_a_line() {
        let pieces = dashes(&[(0.0, 0.0), (80.0, 0.0)], 5.0, 3.0);
        assert_eq!(pieces.len(), 10);
        let drawn: f64 = pieces.iter().map(|p| p.last().unwrap().0 - p[0].0).sum();
        assert!((drawn - 50.0).abs() < 1e-9, "{drawn}");
    }

    #[test]
    fn renders_a_scene_to_a_png() {
        let mut scene = Scene::new(40.0, 20.0, "t");
        scene.text(2.0, 15.0, "k = 3", super::super::TextStyle::new(10.0));
        let bytes = render(&scene).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }
}
