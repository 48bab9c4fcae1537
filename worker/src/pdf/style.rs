//! The look of our documents: A4 geometry, colours and text styles, apart
//! from the mechanics in [`layout`](super::layout), so a redesign touches
//! only this file.

use super::fonts::Weight;

pub(super) const PAGE_WIDTH: f32 = 595.28;
pub(super) const PAGE_HEIGHT: f32 = 841.89;
pub(super) const MARGIN: f32 = 64.0;
pub(super) const TEXT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
/// Where text starts on a page without the banner.
pub(super) const TOP: f32 = 72.0;
/// Text never goes below this line; the footer lives under it.
pub(super) const BOTTOM: f32 = PAGE_HEIGHT - 84.0;
pub(super) const BANNER_HEIGHT: f32 = 104.0;

pub(super) const INK: Rgb = Rgb(17, 24, 39);
pub(super) const BODY: Rgb = Rgb(55, 65, 81);
pub(super) const MUTED: Rgb = Rgb(107, 114, 128);
pub(super) const ACCENT: Rgb = Rgb(79, 70, 229);
pub(super) const RULE: Rgb = Rgb(229, 231, 235);
pub(super) const WHITE: Rgb = Rgb(255, 255, 255);

/// A colour, 8 bits per channel, sRGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rgb(pub u8, pub u8, pub u8);

/// How a run of text looks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Style {
    pub weight: Weight,
    /// Font size in points.
    pub size: f32,
    /// Height of one line.
    pub leading: f32,
    pub color: Rgb,
}

pub(super) const TITLE: Style = Style {
    weight: Weight::Bold,
    size: 30.0,
    leading: 36.0,
    color: INK,
};
pub(super) const LEAD: Style = Style {
    weight: Weight::Regular,
    size: 12.0,
    leading: 18.0,
    color: MUTED,
};
pub(super) const HEADING: Style = Style {
    weight: Weight::Bold,
    size: 14.0,
    leading: 20.0,
    color: ACCENT,
};
pub(super) const TEXT: Style = Style {
    weight: Weight::Regular,
    size: 11.0,
    leading: 17.0,
    color: BODY,
};
pub(super) const BANNER: Style = Style {
    weight: Weight::Bold,
    size: 10.0,
    leading: 14.0,
    color: WHITE,
};
pub(super) const STEP_NUMBER: Style = Style {
    weight: Weight::Bold,
    size: 10.0,
    leading: 14.0,
    color: WHITE,
};
pub(super) const FOOTER: Style = Style {
    weight: Weight::Regular,
    size: 8.5,
    leading: 12.0,
    color: MUTED,
};
