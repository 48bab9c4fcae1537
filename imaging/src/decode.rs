//! Turning an uploaded file into 8-bit RGB pixels.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat};

use shared::images::{ImageFormat as Format, sniff};

use super::ImageError;

/// Decoded pixels, not yet turned upright.
pub struct Decoded {
    /// 8-bit RGB, possibly scaled down from the original.
    pub pixels: RgbImage,
    /// How to turn it upright (from EXIF).
    pub orientation: Orientation,
    /// The original's size in pixels, as stored (before orientation).
    pub original: (u32, u32),
}

/// Decodes `bytes`, at least `min_side` pixels on the short side where the
/// original has them: JPEGs are decoded at the smallest scale (n/8) that
/// still gives that, so a 12 MP photo never exists in memory at full size.
pub fn decode(bytes: &[u8], max_pixels: u64, min_side: u32) -> Result<Decoded, ImageError> {
    match sniff(bytes).ok_or(ImageError::Unsupported)? {
        Format::Jpeg => decode_jpeg(bytes, max_pixels, min_side),
        format @ (Format::Png | Format::WebP) => decode_other(bytes, format, max_pixels),
    }
}

fn check_pixels(width: u64, height: u64, max: u64) -> Result<(), ImageError> {
    if width * height > max {
        return Err(ImageError::TooManyPixels { width, height, max });
    }
    Ok(())
}

fn corrupt(error: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt(error.to_string())
}

fn decode_jpeg(bytes: &[u8], max_pixels: u64, min_side: u32) -> Result<Decoded, ImageError> {
    let mut decompressor = Decompressor::new().map_err(corrupt)?;
    let header = decompressor.read_header(bytes).map_err(corrupt)?;
    let (width, height) = (header.width, header.height);
    check_pixels(width as u64, height as u64, max_pixels)?;

    // The smallest n/8 whose short side still reaches `min_side`.
    let short = width.min(height);
    let wanted = (min_side as usize).min(short);
    let eighths = (1..=8)
        .find(|n| (short * n).div_ceil(8) >= wanted)
        .unwrap_or(8);
    let scaled = |side: usize| (side * eighths).div_ceil(8);
    let (out_width, out_height) = (scaled(width), scaled(height));

    // Photoshop's CMYK JPEGs (the common kind) store inverted ink values;
    // libjpeg-turbo hands them over as stored and converting is ours to do.
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let format = if cmyk {
        PixelFormat::CMYK
    } else {
        PixelFormat::RGB
    };
    let mut pixels = vec![0; out_width * out_height * format.size()];
    decompressor
        .decompress(
            bytes,
            Image {
                pixels: pixels.as_mut_slice(),
                width: out_width,
                pitch: out_width * format.size(),
                height: out_height,
                format,
            },
        )
        .map_err(corrupt)?;
    if cmyk {
        pixels = pixels
            .chunks_exact(4)
            .flat_map(|p| {
                let ink = |channel: u8| ((u16::from(channel) * u16::from(p[3]) + 127) / 255) as u8;
                [ink(p[0]), ink(p[1]), ink(p[2])]
            })
            .collect();
    }
    let pixels = RgbImage::from_raw(out_width as u32, out_height as u32, pixels)
        .ok_or_else(|| corrupt("decoded buffer has the wrong size"))?;
    Ok(Decoded {
        pixels,
        orientation: jpeg_orientation(bytes).unwrap_or(Orientation::NoTransforms),
        original: (width as u32, height as u32),
    })
}

/// The EXIF orientation of a JPEG: the `Exif\0\0` APP1 segment, read
/// without decoding anything else.
fn jpeg_orientation(bytes: &[u8]) -> Option<Orientation> {
    let mut at = 2; // after SOI
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        // Start of scan or end of image: no metadata after this.
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let segment = bytes.get(at + 4..at + 2 + length)?;
        if marker == 0xE1
            && let Some(exif) = segment.strip_prefix(b"Exif\0\0")
        {
            return Orientation::from_exif_chunk(exif);
        }
        at += 2 + length;
    }
    None
}

/// PNG and WebP: decoded whole (neither has scaled decoding), 16-bit
/// channels reduced to 8, transparency flattened onto white.
fn decode_other(bytes: &[u8], format: Format, max_pixels: u64) -> Result<Decoded, ImageError> {
    let format = match format {
        Format::Png => image::ImageFormat::Png,
        _ => image::ImageFormat::WebP,
    };
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_pixels(u64::from(width), u64::from(height), max_pixels)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    let pixels = if image.color().has_alpha() {
        flatten_onto_white(&image)
    } else {
        image.into_rgb8()
    };
    Ok(Decoded {
        pixels,
        orientation,
        original: (width, height),
    })
}

/// JPEG has no transparency; white is what a transparent avatar shows
/// against on most pages.
fn flatten_onto_white(image: &DynamicImage) -> RgbImage {
    let rgba = image.to_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (to, from) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u16::from(from[3]);
        for channel in 0..3 {
            let value = u16::from(from[channel]) * alpha + 255 * (255 - alpha);
            to[channel] = ((value + 127) / 255) as u8;
        }
    }
    rgb
}
