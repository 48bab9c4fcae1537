//! Three centre-cropped squares from one decode, upright, as JPEG.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use turbojpeg::{Compressor, PixelFormat, Subsamp};

pub use media::Variant;

use super::ImageError;
use super::decode::{Limits, decode};

/// One encoded square.
#[derive(Debug)]
pub struct Output {
    /// Which one.
    pub variant: Variant,
    /// Its side in pixels: the variant's, or less for a small original.
    pub side: u32,
    /// The JPEG file.
    pub jpeg: Vec<u8>,
}

/// Everything made from one photo.
#[derive(Debug)]
pub struct Processed {
    /// The original's size once upright.
    pub width: u32,
    /// The original's height once upright.
    pub height: u32,
    /// Large, medium, thumbnail.
    pub outputs: Vec<Output>,
}

/// JPEG quality and chroma subsampling: sharp's defaults (80, 4:2:0), which
/// look the same as the original at avatar sizes at a fraction of the bytes.
const QUALITY: i32 = 80;

/// Decodes `bytes` once and makes every [`Variant`]: centre-cropped to a
/// square ("cover"), never enlarged (an original whose short side is under
/// 1200 gives squares of its short side instead), upright per EXIF.
/// Nothing of the original's metadata (EXIF, XMP, IPTC, ICC) is carried over.
pub fn process(bytes: &[u8], limits: &Limits) -> Result<Processed, ImageError> {
    let decoded = decode(bytes, limits)?;
    let (width, height) = decoded.original;
    let short = width.min(height);
    let mut resizer = Resizer::new();
    let mut compressor = Compressor::new().map_err(internal)?;
    compressor.set_quality(QUALITY);
    compressor.set_subsamp(Subsamp::Sub2x2);

    let mut source = decoded.pixels;
    let mut outputs = Vec::with_capacity(Variant::ALL.len());
    for variant in Variant::ALL {
        limits.check_time()?;
        let side = variant.side().min(short);
        let square = square(&mut resizer, &source, side)?;
        let upright = upright(square.clone(), decoded.orientation);
        let jpeg = compressor
            .compress_to_vec(turbojpeg::Image {
                pixels: upright.as_raw().as_slice(),
                width: side as usize,
                pitch: side as usize * 3,
                height: side as usize,
                format: PixelFormat::RGB,
            })
            .map_err(internal)?;
        outputs.push(Output {
            variant,
            side,
            jpeg,
        });
        // The next, smaller square comes from this one: cheaper than
        // going back to the big decode, and just as sharp.
        source = square;
    }
    let (width, height) = match decoded.orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (height, width),
        _ => (width, height),
    };
    Ok(Processed {
        width,
        height,
        outputs,
    })
}

/// The centred square of `source`, resized to `side` (Lanczos3).
fn square(resizer: &mut Resizer, source: &RgbImage, side: u32) -> Result<RgbImage, ImageError> {
    let (width, height) = source.dimensions();
    let crop = width.min(height);
    let from = ImageRef::new(width, height, source.as_raw(), PixelType::U8x3).map_err(internal)?;
    let mut to = Image::new(side, side, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(
            f64::from(width - crop) / 2.0,
            f64::from(height - crop) / 2.0,
            f64::from(crop),
            f64::from(crop),
        );
    resizer.resize(&from, &mut to, &options).map_err(internal)?;
    RgbImage::from_raw(side, side, to.into_vec()).ok_or_else(|| internal("resized buffer size"))
}

/// Turning a centred square upright gives the same result as cropping the
/// upright photo, so orientation is applied to the small squares: far
/// cheaper than rotating the decoded photo.
fn upright(square: RgbImage, orientation: Orientation) -> RgbImage {
    if orientation == Orientation::NoTransforms {
        return square;
    }
    let mut image = DynamicImage::ImageRgb8(square);
    image.apply_orientation(orientation);
    image.into_rgb8()
}

/// Resizing and encoding valid pixels does not fail; if it does, the input
/// was not what it seemed (an absurd size, say).
fn internal(error: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt(error.to_string())
}
