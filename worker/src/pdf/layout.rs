//! Sets [`Block`]s on A4 pages and writes the PDF with krilla.
//!
//! Layout is two passes: [`paginate`] turns blocks into positioned drawing
//! operations, page by page (so the footer can say "1 / 2"), then [`write`]
//! draws them. Text is shaped with rustybuzz, the shaper krilla itself uses,
//! so the widths we wrap by are the widths krilla draws.

use krilla::error::KrillaError;
use krilla::metadata::Metadata;

use super::fonts::{Fonts, Weight};
use super::markup::Block;
use super::style::{
    ACCENT, BANNER, BANNER_HEIGHT, BOTTOM, HEADING, LEAD, MARGIN, PAGE_WIDTH, Rgb, STEP_NUMBER,
    Style, TEXT, TEXT_WIDTH, TITLE, TOP,
};

/// One positioned drawing operation.
#[derive(Debug, Clone)]
pub(super) enum Op {
    /// Text on one line, `y` being its baseline.
    Text {
        x: f32,
        y: f32,
        style: Style,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        color: Rgb,
    },
    Circle {
        x: f32,
        y: f32,
        radius: f32,
        color: Rgb,
    },
}

/// A finished document.
#[derive(Debug)]
pub struct Typeset {
    /// The PDF file.
    pub bytes: Vec<u8>,
    /// How many pages it has.
    pub pages: usize,
    /// Characters no embedded font has a glyph for (drawn as empty boxes),
    /// sorted, each once; empty when everything could be drawn.
    pub unsupported: Vec<char>,
}

/// Lays `blocks` out and writes them as a PDF with `metadata`.
pub fn typeset(
    fonts: &Fonts,
    blocks: &[Block],
    metadata: Metadata,
) -> Result<Typeset, KrillaError> {
    let pages = paginate(fonts, blocks);
    let mut unsupported: Vec<char> = pages
        .iter()
        .flatten()
        .filter_map(|op| match op {
            Op::Text { text, style, .. } => Some(
                text.chars()
                    .filter(|&c| !c.is_whitespace() && !fonts.can_draw(style.weight, c)),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    unsupported.sort_unstable();
    unsupported.dedup();
    let bytes = super::draw::write(fonts, &pages, metadata)?;
    Ok(Typeset {
        bytes,
        pages: pages.len(),
        unsupported,
    })
}

fn paginate(fonts: &Fonts, blocks: &[Block]) -> Vec<Vec<Op>> {
    let mut cursor = Cursor {
        fonts,
        pages: vec![Vec::new()],
        y: TOP,
    };
    let mut previous: Option<&Block> = None;
    for block in blocks {
        // A list ends with more air than lies between its items.
        if matches!(previous, Some(Block::Step(..) | Block::Bullet(_)))
            && !matches!(block, Block::Step(..) | Block::Bullet(_))
        {
            cursor.space(8.0);
        }
        previous = Some(block);
        match block {
            Block::Banner(text) => {
                cursor.push(Op::Rect {
                    x: 0.0,
                    y: 0.0,
                    width: PAGE_WIDTH,
                    height: BANNER_HEIGHT,
                    color: ACCENT,
                });
                cursor.push(Op::Text {
                    x: MARGIN,
                    y: BANNER_HEIGHT / 2.0 + BANNER.size * 0.35,
                    style: BANNER,
                    text: text.to_uppercase(),
                });
                cursor.y = cursor.y.max(BANNER_HEIGHT + 48.0);
            }
            Block::Title(text) => {
                cursor.lines(text, TITLE, 0.0);
                cursor.space(6.0);
            }
            Block::Lead(text) => {
                cursor.lines(text, LEAD, 0.0);
                cursor.space(22.0);
            }
            Block::Heading(text) => {
                cursor.space(14.0);
                // Keep a heading with the first lines of its section.
                cursor.room_for(HEADING.leading + 2.0 * TEXT.leading);
                cursor.lines(text, HEADING, 0.0);
                cursor.space(8.0);
            }
            Block::Paragraph(text) => {
                cursor.lines(text, TEXT, 0.0);
                cursor.space(10.0);
            }
            Block::Step(number, text) => {
                let indent = 32.0;
                let baseline = cursor.lines(text, TEXT, indent);
                let (x, y, radius) = (MARGIN + 10.0, baseline - TEXT.size * 0.35, 10.0);
                let width = fonts.width(STEP_NUMBER.weight, number, STEP_NUMBER.size);
                cursor.push(Op::Circle {
                    x,
                    y,
                    radius,
                    color: ACCENT,
                });
                cursor.push(Op::Text {
                    x: x - width / 2.0,
                    y: y + STEP_NUMBER.size * 0.35,
                    style: STEP_NUMBER,
                    text: number.clone(),
                });
                cursor.space(10.0);
            }
            Block::Bullet(text) => {
                let baseline = cursor.lines(text, TEXT, 20.0);
                cursor.push(Op::Circle {
                    x: MARGIN + 6.0,
                    y: baseline - TEXT.size * 0.35,
                    radius: 2.2,
                    color: ACCENT,
                });
                cursor.space(6.0);
            }
        }
    }
    cursor.pages
}

/// Where the next line goes.
struct Cursor<'a> {
    fonts: &'a Fonts,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Cursor<'_> {
    fn push(&mut self, op: Op) {
        self.pages
            .last_mut()
            .expect("there is always a current page")
            .push(op);
    }

    /// Vertical space, dropped at the top of a page.
    fn space(&mut self, height: f32) {
        if self.y > TOP {
            self.y += height;
        }
    }

    /// Starts a new page unless `height` still fits on this one.
    fn room_for(&mut self, height: f32) {
        if self.y + height > BOTTOM {
            self.pages.push(Vec::new());
            self.y = TOP;
        }
    }

    /// Sets `text` wrapped to the text width less `indent`; returns the
    /// baseline of the first line, for markers drawn beside it.
    fn lines(&mut self, text: &str, style: Style, indent: f32) -> f32 {
        let mut first = None;
        for line in wrap(
            self.fonts,
            style.weight,
            text,
            style.size,
            TEXT_WIDTH - indent,
        ) {
            self.room_for(style.leading);
            // Centre the capitals (about 0.7 em tall) in the line's box.
            let baseline = self.y + (style.leading + style.size * 0.7) / 2.0;
            first.get_or_insert(baseline);
            self.push(Op::Text {
                x: MARGIN + indent,
                y: baseline,
                style,
                text: line,
            });
            self.y += style.leading;
        }
        first.unwrap_or(self.y)
    }
}

/// Greedy line breaking at spaces; a word wider than a whole line (a long
/// name without spaces, a URL) is broken between characters.
fn wrap(fonts: &Fonts, weight: Weight, text: &str, size: f32, width: f32) -> Vec<String> {
    let measure = |text: &str| fonts.width(weight, text, size);
    let space = measure(" ");
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_width = 0.0;
    for word in text.split_whitespace() {
        let word_width = measure(word);
        if !line.is_empty() && line_width + space + word_width <= width {
            line.push(' ');
            line.push_str(word);
            line_width += space + word_width;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if word_width <= width {
            line.push_str(word);
            line_width = word_width;
            continue;
        }
        for ch in word.chars() {
            let mut candidate = line.clone();
            candidate.push(ch);
            if !line.is_empty() && measure(&candidate) > width {
                lines.push(std::mem::take(&mut line));
                line.push(ch);
            } else {
                line = candidate;
            }
        }
        line_width = measure(&line);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::{Fonts, TEXT_WIDTH, Weight, wrap};

    fn fonts() -> Fonts {
        Fonts::embedded().expect("the embedded fonts parse")
    }

    #[test]
    fn wrapped_lines_fit_the_width_and_keep_every_word() {
        let fonts = fonts();
        let text = "Upload a profile photo. It appears next to everything you do, \
                    so your team recognises you at a glance.";
        let lines = wrap(&fonts, Weight::Regular, text, 11.0, 200.0);
        assert!(lines.len() > 1, "{lines:?}");
        for line in &lines {
            assert!(fonts.width(Weight::Regular, line, 11.0) <= 200.0, "{line}");
        }
        assert_eq!(lines.join(" "), text);
    }

    #[test]
    fn a_word_wider_than_the_page_is_broken_between_characters() {
        let fonts = fonts();
        let name = "W".repeat(100);
        let lines = wrap(&fonts, Weight::Bold, &name, 30.0, TEXT_WIDTH);
        assert!(lines.len() > 1);
        assert!(
            lines
                .iter()
                .all(|line| fonts.width(Weight::Bold, line, 30.0) <= TEXT_WIDTH)
        );
        assert_eq!(lines.concat(), name);
    }
}
