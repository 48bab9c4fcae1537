//! PDF documents: a minijinja template renders a small line-based markup
//! ([`markup`]), which [`layout`] sets on A4 pages with embedded, subset
//! DejaVu fonts through krilla. [`onboarding`] is the one document so far.

pub mod layout;
pub mod markup;
pub mod onboarding;

pub use onboarding::{Onboarding, OnboardingPdf};
