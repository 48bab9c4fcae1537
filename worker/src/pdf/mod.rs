//! PDF documents: a minijinja template renders a small line-based markup
//! ([`markup`]), which [`layout`] sets on A4 pages in the embedded [`fonts`]
//! (subset into each file) through krilla, which `draw.rs` draws. [`onboarding`] is the one document so far.

mod draw;
pub mod fonts;
pub mod layout;
pub mod markup;
pub mod onboarding;
mod style;

pub use onboarding::{GuideRenderer, Onboarding};
