//! The schemes' text forms: tpa's `quant` labels, plus modifiers.

use std::str::FromStr;

use super::Scheme;
use crate::Dtype;

pub(super) fn label(s: &Scheme) -> String {
    let int_group = |g: &Option<usize>| g.map_or("channel".to_owned(), |g| format!("g{g}"));
    match s {
        Scheme::Fp8Block { rows, cols, .. } => format!("fp8-block-{rows}x{cols}"),
        Scheme::CtFp8Channel => "ct-fp8-channel".into(),
        Scheme::CtInt { bits, group, .. } => format!("ct-int{bits}-{}", int_group(group)),
        Scheme::CtNvfp4 => "ct-nvfp4-g16".into(),
        Scheme::Gptq { bits, group, .. } => format!("gptq-int{bits}-{}", int_group(group)),
        Scheme::Awq { group } => format!("awq-int4-g{group}"),
        Scheme::MlxAffine { bits, group } => format!("mlx-affine-int{bits}-g{group}"),
        Scheme::MlxMxfp4 => "mlx-mxfp4-g32".into(),
        Scheme::Bnb4 { nf4, block, .. } => {
            format!("bnb-{}-b{block}", if *nf4 { "nf4" } else { "fp4" })
        }
        Scheme::BnbInt8 => "bnb-int8-row".into(),
        Scheme::GptOssMxfp4 => "mxfp4-b32".into(),
    }
}

impl std::fmt::Display for Scheme {
    /// The label followed by its modifiers; parses back to the same scheme.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())?;
        match self {
            Scheme::Fp8Block { scale, .. } if *scale != Dtype::F32 => {
                write!(f, "-{}", scale.to_string().to_lowercase())
            }
            Scheme::CtInt {
                symmetric: false, ..
            } => f.write_str("-asym"),
            Scheme::Gptq { desc_act, v2, .. } => {
                if *v2 {
                    f.write_str("-v2")?;
                }
                if *desc_act {
                    f.write_str("-desc")?;
                }
                Ok(())
            }
            Scheme::Bnb4 { nested: true, .. } => f.write_str("-nested"),
            _ => Ok(()),
        }
    }
}

impl FromStr for Scheme {
    type Err = String;

    fn from_str(text: &str) -> Result<Scheme, String> {
        let mut words: Vec<&str> = text.split('-').collect();
        let mut modifiers = Vec::new();
        while let Some(&w) = words.last() {
            if !matches!(w, "bf16" | "f16" | "asym" | "v2" | "desc" | "nested") {
                break;
            }
            modifiers.push(w);
            words.pop();
        }
        let has = |m: &str| modifiers.contains(&m);
        let bad = || format!("unknown quantization scheme {text:?} (e.g. {})", EXAMPLES);
        let number = |w: &str, prefix: &str| -> Result<usize, String> {
            w.strip_prefix(prefix)
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)
        };
        let group = |w: &str| -> Result<Option<usize>, String> {
            if w == "channel" {
                Ok(None)
            } else {
                number(w, "g").map(Some)
            }
        };
        let scheme = match words.as_slice() {
            ["fp8", "block", size] => {
                let (r, c) = size.split_once('x').ok_or_else(bad)?;
                Scheme::Fp8Block {
                    rows: r.parse().map_err(|_| bad())?,
                    cols: c.parse().map_err(|_| bad())?,
                    scale: if has("bf16") {
                        Dtype::BF16
                    } else if has("f16") {
                        Dtype::F16
                    } else {
                        Dtype::F32
                    },
                }
            }
            ["ct", "fp8", "channel"] => Scheme::CtFp8Channel,
            ["ct", "nvfp4", "g16"] => Scheme::CtNvfp4,
            ["ct", int, g] => Scheme::CtInt {
                bits: number(int, "int")? as u32,
                group: group(g)?,
                symmetric: !has("asym"),
            },
            ["gptq", int, g] => Scheme::Gptq {
                bits: number(int, "int")? as u32,
                group: group(g)?,
                desc_act: has("desc"),
                v2: has("v2"),
            },
            ["awq", "int4", g] => Scheme::Awq {
                group: number(g, "g")?,
            },
            ["mlx", "affine", int, g] => Scheme::MlxAffine {
                bits: number(int, "int")? as u32,
                group: number(g, "g")?,
            },
            ["mlx", "mxfp4", "g32"] => Scheme::MlxMxfp4,
            ["bnb", kind @ ("nf4" | "fp4"), b] => Scheme::Bnb4 {
                nf4: *kind == "nf4",
                block: number(b, "b")?,
                nested: has("nested"),
            },
            ["bnb", "int8", "row"] => Scheme::BnbInt8,
            ["mxfp4", "b32"] => Scheme::GptOssMxfp4,
            _ => return Err(bad()),
        };
        // Modifiers must belong to the scheme (a typo must not vanish).
        if scheme.to_string() != text {
            return Err(format!(
                "{text:?}: modifiers that {} does not take, or out of order (write {:?})",
                scheme.label(),
                scheme.to_string()
            ));
        }
        Ok(scheme)
    }
}

const EXAMPLES: &str = "fp8-block-128x128, ct-int4-g128[-asym], ct-fp8-channel, ct-nvfp4-g16, \
     gptq-int4-g128[-v2][-desc], awq-int4-g128, mlx-affine-int4-g64, mlx-mxfp4-g32, \
     bnb-nf4-b64[-nested], bnb-fp4-b64, bnb-int8-row, mxfp4-b32";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_typos_are_refused() {
        for s in Scheme::examples() {
            assert_eq!(s.to_string().parse::<Scheme>(), Ok(s.clone()), "{s}");
        }
        assert!("gptq-int4-g128-desc-v2".parse::<Scheme>().is_err());
        assert!("ct-int4-g128-nested".parse::<Scheme>().is_err());
        assert!("fp8-block-128".parse::<Scheme>().is_err());
        assert_eq!(
            "gptq-int4-channel-v2".parse::<Scheme>(),
            Ok(Scheme::Gptq {
                bits: 4,
                group: None,
                desc_act: false,
                v2: true
            })
        );
    }
}
