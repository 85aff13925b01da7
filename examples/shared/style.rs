//! The chart style of the examples that draw PNGs (`bench_report`, `compression_curve`),
//! included by each with `#[path]`: the font, which plotters' `ab_glyph` backend needs
//! registered at run time (none is committed), and the palette.

use std::path::Path;

use plotters::style::{FontStyle, RGBColor, register_font};

/// The TTF used for every label; `RBE_REPORT_FONT` overrides the search.
pub const FONT_ENV: &str = "RBE_REPORT_FONT";

/// Common locations of a sans-serif TTF (Debian's fonts-dejavu-core first). Fonts are
/// loaded at run time so none has to be committed; plotters' `ab_glyph` backend needs no
/// fontconfig.
const FONT_CANDIDATES: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// The family name every label asks for.
pub const FONT: &str = "sans-serif";

/// Registers the first font found and returns its path.
pub fn register_font_from_system() -> Result<String, String> {
    let custom = std::env::var(FONT_ENV).ok();
    let path = custom
        .iter()
        .map(String::as_str)
        .chain(FONT_CANDIDATES)
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            format!(
                "no TTF font found (tried {}); install fonts-dejavu-core or set {FONT_ENV}",
                FONT_CANDIDATES.join(", ")
            )
        })?
        .to_string();
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    // plotters keeps fonts for the whole process and wants them 'static.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font(FONT, FontStyle::Normal, bytes).map_err(|_| format!("{path}: not a TTF"))?;
    Ok(path)
}

/// Dark, distinct colours: plotters' palette includes yellows that vanish on white.
pub const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];
