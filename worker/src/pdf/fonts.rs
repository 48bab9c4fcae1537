//! The fonts documents are set in, and how text is measured and split
//! between them. Characters the style's font has no glyph for (Chinese and
//! Japanese names) are set in the fallback font rather than drawn as empty
//! boxes; what no font has is reported, not hidden.

use krilla::text::Font;

/// A font with what it takes to measure text set in it.
pub struct Typeface {
    pub(super) font: Font,
    shaper: rustybuzz::Face<'static>,
    units_per_em: f32,
}

impl Typeface {
    /// Parses a TrueType font once; documents then share it.
    pub fn new(data: &'static [u8]) -> Option<Self> {
        let shaper = rustybuzz::Face::from_slice(data, 0)?;
        Some(Self {
            font: Font::new(data.into(), 0)?,
            units_per_em: shaper.units_per_em() as f32,
            shaper,
        })
    }

    /// Whether the font has a glyph for `c`.
    fn covers(&self, c: char) -> bool {
        self.shaper.glyph_index(c).is_some()
    }

    /// The advance width of `text` at `size` points, shaped (ligatures,
    /// kerning, complex scripts) exactly as krilla will draw it.
    pub(super) fn width(&self, text: &str, size: f32) -> f32 {
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&self.shaper, &[], buffer);
        let units: i32 = shaped.glyph_positions().iter().map(|p| p.x_advance).sum();
        units as f32 / self.units_per_em * size
    }
}

/// The faces every document uses.
pub struct Fonts {
    /// Body text.
    pub regular: Typeface,
    /// Titles, headings, step numbers.
    pub bold: Typeface,
    /// For characters the other two lack, in either weight.
    pub fallback: Typeface,
}

/// Regular or bold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Weight {
    Regular,
    Bold,
}

impl Fonts {
    /// DejaVu Sans (Latin, Greek, Cyrillic, Arabic, Hebrew and more) and
    /// Droid Sans Fallback (Chinese, Japanese), compiled into the binary.
    /// Not covered: Korean Hangul, Indic scripts, Thai.
    pub fn embedded() -> anyhow::Result<Self> {
        let face = |data: &'static [u8], name: &str| {
            Typeface::new(data).ok_or_else(|| anyhow::anyhow!("font {name} does not parse"))
        };
        Ok(Self {
            regular: face(
                include_bytes!("../../../assets/fonts/DejaVuSans.ttf"),
                "DejaVuSans",
            )?,
            bold: face(
                include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf"),
                "DejaVuSans-Bold",
            )?,
            fallback: face(
                include_bytes!("../../../assets/fonts/DroidSansFallbackFull.ttf"),
                "DroidSansFallbackFull",
            )?,
        })
    }

    /// Splits `text` into runs that each use one font: the weight's own, or
    /// the fallback where only the fallback has the glyphs.
    pub(super) fn runs<'t>(&self, weight: Weight, text: &'t str) -> Vec<(&Typeface, &'t str)> {
        let own = self.own(weight);
        let face_of = |c: char| {
            if own.covers(c) || !self.fallback.covers(c) {
                own
            } else {
                &self.fallback
            }
        };
        let mut runs: Vec<(&Typeface, &str)> = Vec::new();
        let mut start = 0;
        let mut current: Option<&Typeface> = None;
        for (index, c) in text.char_indices() {
            let face = face_of(c);
            match current {
                Some(open) if std::ptr::eq(open, face) => {}
                Some(open) => {
                    runs.push((open, &text[start..index]));
                    (start, current) = (index, Some(face));
                }
                None => current = Some(face),
            }
        }
        if let Some(open) = current {
            runs.push((open, &text[start..]));
        }
        runs
    }

    /// Whether `weight`'s font or the fallback has a glyph for `c`.
    pub(super) fn can_draw(&self, weight: Weight, c: char) -> bool {
        self.own(weight).covers(c) || self.fallback.covers(c)
    }

    fn own(&self, weight: Weight) -> &Typeface {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// The width of `text` set in `weight` at `size` points.
    pub(super) fn width(&self, weight: Weight, text: &str, size: f32) -> f32 {
        self.runs(weight, text)
            .into_iter()
            .map(|(face, run)| face.width(run, size))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{Fonts, Weight};

    fn fonts() -> Fonts {
        Fonts::embedded().expect("the embedded fonts parse")
    }

    #[test]
    fn characters_dejavu_lacks_are_set_in_the_fallback_font() {
        let fonts = fonts();
        let runs: Vec<(bool, &str)> = fonts
            .runs(Weight::Bold, "Ada 山田太郎!")
            .into_iter()
            .map(|(face, run)| (std::ptr::eq(face, &fonts.fallback), run))
            .collect();
        assert_eq!(runs, [(false, "Ada "), (true, "山田太郎"), (false, "!")]);
        assert!(!fonts.can_draw(Weight::Regular, '김'));
    }
}
