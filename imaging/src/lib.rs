//! Profile photos: decode once, make three upright square JPEGs. Used by
//! the worker's `image-resize` job; a crate of its own so that development
//! builds can optimise it (and only it).
//!
//! - [`decode`]: sniffing, JPEG through libjpeg-turbo with scaled decoding
//!   (a 12 MP photo bound for 1200×1200 is decoded at half size), PNG and
//!   WebP through `image`; everything ends as 8-bit RGB.
//! - [`resize`]: centre-cropped squares with `fast_image_resize`, EXIF
//!   orientation, and JPEG encoding.
//!
//! CPU-bound throughout: call [`process`] on a blocking thread.

pub mod decode;
pub mod resize;

pub use resize::{Output, Processed, Variant, process};

/// Why a photo cannot be used. Every variant is the input's fault, so a
/// retry would fail the same way: the job fails permanently.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not a JPEG, PNG or WebP file.
    #[error("not a JPEG, PNG or WebP image")]
    Unsupported,
    /// More pixels than `PHOTO_MAX_PIXELS`: a decompression bomb, or just
    /// more than we are willing to hold.
    #[error("the image is {width}×{height} pixels; at most {max} pixels are accepted")]
    TooManyPixels {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// The limit.
        max: u64,
    },
    /// The file is damaged or cut short.
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}
