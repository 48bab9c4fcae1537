//! The second pass of the layout: positioned operations drawn onto krilla
//! pages.

use krilla::Document;
use krilla::color::rgb;
use krilla::error::KrillaError;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::Fill;
use krilla::surface::Surface;
use krilla::text::TextDirection;

use super::fonts::Fonts;
use super::layout::Op;
use super::style::{FOOTER, MARGIN, PAGE_HEIGHT, PAGE_WIDTH, RULE, Rgb, TEXT_WIDTH};

pub(super) fn write(
    fonts: &Fonts,
    pages: &[Vec<Op>],
    metadata: Metadata,
) -> Result<Vec<u8>, KrillaError> {
    let mut document = Document::new();
    document.set_metadata(metadata);
    let count = pages.len();
    for (index, ops) in pages.iter().enumerate() {
        let settings =
            PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).expect("A4 is a valid page size");
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for op in ops {
            draw(&mut surface, fonts, op);
        }
        let footer = format!("{} / {count}", index + 1);
        let width = fonts.width(FOOTER.weight, &footer, FOOTER.size);
        let rule = Op::Rect {
            x: MARGIN,
            y: PAGE_HEIGHT - 58.0,
            width: TEXT_WIDTH,
            height: 0.75,
            color: RULE,
        };
        draw(&mut surface, fonts, &rule);
        let number = Op::Text {
            x: PAGE_WIDTH - MARGIN - width,
            y: PAGE_HEIGHT - 40.0,
            style: FOOTER,
            text: footer,
        };
        draw(&mut surface, fonts, &number);
        surface.finish();
        page.finish();
    }
    document.finish()
}

fn draw(surface: &mut Surface<'_>, fonts: &Fonts, op: &Op) {
    match op {
        Op::Text { x, y, style, text } => {
            fill(surface, style.color);
            let mut x = *x;
            for (face, run) in fonts.runs(style.weight, text) {
                surface.draw_text(
                    Point::from_xy(x, *y),
                    face.font.clone(),
                    style.size,
                    run,
                    false,
                    TextDirection::Auto,
                );
                x += face.width(run, style.size);
            }
        }
        Op::Rect {
            x,
            y,
            width,
            height,
            color,
        } => {
            let mut path = PathBuilder::new();
            if let Some(rect) = Rect::from_xywh(*x, *y, *width, *height) {
                path.push_rect(rect);
            }
            if let Some(path) = path.finish() {
                fill(surface, *color);
                surface.draw_path(&path);
            }
        }
        Op::Circle {
            x,
            y,
            radius: r,
            color,
        } => {
            // Four cubic Béziers; 0.5523 puts their midpoints on the circle.
            let k = 0.5523 * r;
            let mut path = PathBuilder::new();
            path.move_to(x + r, *y);
            path.cubic_to(x + r, y + k, x + k, y + r, *x, y + r);
            path.cubic_to(x - k, y + r, x - r, y + k, x - r, *y);
            path.cubic_to(x - r, y - k, x - k, y - r, *x, y - r);
            path.cubic_to(x + k, y - r, x + r, y - k, x + r, *y);
            path.close();
            if let Some(path) = path.finish() {
                fill(surface, *color);
                surface.draw_path(&path);
            }
        }
    }
}

fn fill(surface: &mut Surface<'_>, Rgb(red, green, blue): Rgb) {
    surface.set_fill(Some(Fill {
        paint: rgb::Color::new(red, green, blue).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }));
}
