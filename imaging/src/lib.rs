//! Profile photos: decode once, within a budget, and make three upright
//! square JPEGs. Used by the worker's `image-resize` job; a crate of its
//! own, knowing nothing of databases, queues or storage (its only code
//! dependency is `media`), so development builds can optimise it alone and
//! its tests and benchmark (`tests/`, `benches/images.rs`) need no services.
//!
//! - [`decode`]: header checks before any allocation (pixels, decode bytes,
//!   JPEG scans), JPEG through libjpeg-turbo with scaled decoding, PNG row
//!   by row, WebP through `image`; everything ends as 8-bit RGB.
//! - [`resize`]: centre-cropped squares with `fast_image_resize`, EXIF
//!   orientation, and JPEG encoding (which writes no metadata at all).
//!
//! CPU-bound throughout: call [`process`] on a blocking thread.

pub mod decode;
pub mod resize;

pub use decode::Limits;
pub use resize::{Output, Processed, Variant, process};

/// Why a photo cannot be used. Every variant is the input's fault, so a
/// retry would fail the same way: the job fails permanently.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not a JPEG, PNG or WebP file.
    #[error("not a JPEG, PNG or WebP image")]
    Unsupported,
    /// More pixels than `PHOTO_MAX_PIXELS`.
    #[error("the image is {width}×{height} pixels; at most {max} pixels are accepted")]
    TooManyPixels {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// The limit.
        max: u64,
    },
    /// Decoding would hold more than `PHOTO_MAX_DECODE_BYTES`.
    #[error("a {kind} of {width}×{height} needs {needed} bytes to decode; the budget is {budget}")]
    TooCostly {
        /// How the file is stored ("progressive JPEG", …).
        kind: &'static str,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bytes its decoder would hold.
        needed: u64,
        /// The budget.
        budget: u64,
    },
    /// A JPEG with more scans than any encoder writes: a CPU bomb.
    #[error("the JPEG has {scans} scans; at most {max} are accepted")]
    TooManyScans {
        /// Scans in the file.
        scans: usize,
        /// The limit.
        max: usize,
    },
    /// The work passed the job's deadline and stopped.
    #[error("processing the image passed its deadline")]
    TooSlow,
    /// The file is damaged or cut short.
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}

impl ImageError {
    /// A stable code and a sentence for the person who uploaded the photo:
    /// what is wrong with their file, never a decoder's message.
    pub fn public(&self) -> (&'static str, String) {
        match self {
            Self::Unsupported => (
                "image_unsupported",
                "The file is not a JPEG, PNG or WebP image.".into(),
            ),
            Self::TooManyPixels { width, height, max } => (
                "image_too_large",
                format!(
                    "The image is {width}×{height} pixels; at most {} million pixels are accepted.",
                    max / 1_000_000
                ),
            ),
            Self::TooCostly {
                kind,
                width,
                height,
                ..
            } => (
                "image_too_large",
                format!(
                    "This {kind} of {width}×{height} pixels is too large to process; \
                     please upload a smaller image."
                ),
            ),
            Self::TooManyScans { .. } => (
                "image_too_complex",
                "The image is stored in too many passes to process; \
                 please save it again as a standard JPEG."
                    .into(),
            ),
            Self::TooSlow => (
                "image_too_slow",
                "The image took too long to process; please upload a smaller or simpler file."
                    .into(),
            ),
            Self::Corrupt(_) => (
                "image_unreadable",
                "The image could not be read; it may be damaged or incomplete.".into(),
            ),
        }
    }
}
