//! Colours: one fixed colour and marker per block type in every chart, one
//! colour per model in comparisons, and colour maps for heatmaps. The
//! categorical colours are Okabe & Ito's and Paul Tol's colour-blind-safe
//! sets; markers and dashes tell series apart where colours alone would not.

use super::{Color, Marker};

/// Okabe & Ito (2008), without yellow, which vanishes on white.
const OKABE_ITO: [u32; 7] = [
    0x0072B2, 0xE69F00, 0x009E73, 0xD55E00, 0xCC79A7, 0x56B4E9, 0x000000,
];

/// The colour and marker of a block type (`q_proj`, `mlp_down`, ...), the
/// same in every chart of every report.
pub fn block_type(name: &str) -> (Color, Marker) {
    use Marker::*;
    let (rgb, marker) = match name {
        "q_proj" => (0x0072B2, Circle),
        "k_proj" => (0xE69F00, Square),
        "v_proj" => (0x009E73, Triangle),
        "o_proj" => (0xD55E00, Diamond),
        "qkv" => (0x332288, Circle),
        "kv_proj" => (0x88CCEE, Square),
        "mlp_gate" => (0xCC79A7, TriangleDown),
        "mlp_up" => (0x56B4E9, Diamond),
        "mlp_down" => (0x882255, Square),
        "mlp_gate_up" => (0x44AA99, Triangle),
        "moe_gate" => (0x999933, Circle),
        "embedding" => (0x117733, Square),
        "output" => (0xAA4499, Diamond),
        "position_embedding" => (0xDDCC77, Triangle),
        "token_type_embedding" => (0xCC6677, TriangleDown),
        "norm" => (0x888888, Circle),
        "bias" => (0xAAAAAA, Square),
        "quant_scale" => (0x666666, Triangle),
        _ => (0x444444, Diamond),
    };
    (Color::hex(rgb), marker)
}

/// The colour of the `i`-th model of a comparison.
pub fn model(i: usize) -> Color {
    Color::hex(OKABE_ITO[i % OKABE_ITO.len()])
}

/// The marker of the `i`-th model of a comparison.
pub fn model_marker(i: usize) -> Marker {
    use Marker::*;
    [Circle, Square, Triangle, Diamond, TriangleDown][i % 5]
}

/// Viridis (perceptually uniform, colour-blind safe) at `t` in [0, 1].
pub fn sequential(t: f64) -> Color {
    const STOPS: [u32; 9] = [
        0x440154, 0x472D7B, 0x3B528B, 0x2C728E, 0x21918C, 0x28AE80, 0x5EC962, 0xADDC30, 0xFDE725,
    ];
    interpolate(&STOPS, t)
}

/// Blue–white–red (ColorBrewer RdBu, reversed) at `t` in [−1, 1]: negative
/// changes blue, positive red, none white.
pub fn diverging(t: f64) -> Color {
    const STOPS: [u32; 9] = [
        0x2166AC, 0x4393C3, 0x92C5DE, 0xD1E5F0, 0xF7F7F7, 0xFDDBC7, 0xF4A582, 0xD6604D, 0xB2182B,
    ];
    interpolate(&STOPS, (t.clamp(-1.0, 1.0) + 1.0) / 2.0)
}

fn interpolate(stops: &[u32], t: f64) -> Color {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let (a, b) = (Color::hex(stops[i]), Color::hex(stops[i + 1]));
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    Color {
        r: mix(a.r, b.r),
        g: mix(a.g, b.g),
        b: mix(a.b, b.b),
        alpha: 1.0,
    }
}

/// Black or white, whichever reads better on `background`.
pub fn text_on(background: Color) -> Color {
    let luminance =
        0.299 * background.r as f64 + 0.587 * background.g as f64 + 0.114 * background.b as f64;
    if luminance > 140.0 {
        Color::BLACK
    } else {
        Color::WHITE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_maps_hit_their_ends() {
        assert_eq!(sequential(0.0), Color::hex(0x440154));
        assert_eq!(sequential(1.0), Color::hex(0xFDE725));
        assert_eq!(diverging(0.0), Color::hex(0xF7F7F7));
        assert_eq!(diverging(-5.0), Color::hex(0x2166AC));
    }

    #[test]
    fn common_block_types_differ_in_colour() {
        let names = [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "mlp_gate",
            "mlp_up",
            "mlp_down",
            "embedding",
            "output",
        ];
        let colours: std::collections::HashSet<_> =
            names.iter().map(|n| block_type(n).0.css()).collect();
        assert_eq!(colours.len(), names.len());
    }
}
