//! Images made in the test, so every case (format, orientation, CMYK,
//! alpha, 16-bit, broken files) is a few lines and no binary fixtures.

use std::io::Cursor;

use image::{ImageBuffer, ImageFormat, Rgb, Rgba};
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

/// A `width`×`height` RGB picture whose colour comes from `paint(x, y)`.
pub fn rgb(width: u32, height: u32, paint: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            pixels.extend(paint(x, y));
        }
    }
    pixels
}

/// Photo-like noise: gradients and texture, so JPEG sizes and decode
/// times resemble a real photo's more than a flat colour's do.
pub fn photo(width: u32, height: u32) -> Vec<u8> {
    rgb(width, height, |x, y| {
        let noise =
            (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)).wrapping_mul(2_654_435_761) >> 27;
        [
            (x * 255 / width) as u8 ^ noise as u8,
            (y * 255 / height) as u8,
            ((x + y) % 256) as u8 / 2 + noise as u8,
        ]
    })
}

/// Random pixels: the worst case for JPEG, so a few megapixels make a file
/// of several megabytes.
pub fn noise(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..width * height * 3)
        .map(|_| {
            // xorshift64: fast, deterministic, good enough for pixels.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect()
}

/// Encodes RGB pixels as a baseline JPEG (quality 90, 4:2:0).
pub fn jpeg(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    encode_jpeg(width, height, pixels, PixelFormat::RGB)
}

/// A CMYK JPEG, ink values stored inverted as Photoshop writes them.
pub fn cmyk_jpeg(width: u32, height: u32, ink: [u8; 4]) -> Vec<u8> {
    let stored = ink.map(|value| 255 - value);
    let pixels: Vec<u8> = (0..width * height).flat_map(|_| stored).collect();
    encode_jpeg(width, height, &pixels, PixelFormat::CMYK)
}

fn encode_jpeg(width: u32, height: u32, pixels: &[u8], format: PixelFormat) -> Vec<u8> {
    let mut compressor = Compressor::new().expect("turbojpeg initialises");
    compressor.set_quality(90);
    compressor.set_subsamp(Subsamp::Sub2x2);
    compressor
        .compress_to_vec(Image {
            pixels,
            width: width as usize,
            pitch: width as usize * format.size(),
            height: height as usize,
            format,
        })
        .expect("the test image encodes")
}

/// `jpeg` with an EXIF block saying how to turn it upright (1–8).
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    // TIFF header (big endian), one IFD entry: 0x0112 Orientation, SHORT, 1.
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0, 0, 0, 0, 0]);
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend(tiff);
    let length = u16::try_from(segment.len() + 2).expect("a short segment");
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xFF, 0xE1]);
    out.extend(length.to_be_bytes());
    out.extend(segment);
    out.extend(&jpeg[2..]);
    out
}

/// An RGBA PNG, every pixel `color`.
pub fn rgba_png(width: u32, height: u32, color: [u8; 4]) -> Vec<u8> {
    encode(
        ImageBuffer::from_pixel(width, height, Rgba(color)),
        ImageFormat::Png,
    )
}

/// A 16-bit-per-channel RGB PNG, every pixel `color`.
pub fn rgb16_png(width: u32, height: u32, color: [u16; 3]) -> Vec<u8> {
    encode(
        ImageBuffer::from_pixel(width, height, Rgb(color)),
        ImageFormat::Png,
    )
}

/// A lossless WebP, every pixel `color`.
pub fn webp(width: u32, height: u32, color: [u8; 3]) -> Vec<u8> {
    encode(
        ImageBuffer::from_pixel(width, height, Rgb(color)),
        ImageFormat::WebP,
    )
}

fn encode<P>(image: ImageBuffer<P, Vec<P::Subpixel>>, format: ImageFormat) -> Vec<u8>
where
    P: image::Pixel + image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
{
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .expect("the test image encodes");
    out.into_inner()
}

/// Decodes a JPEG we produced: (width, height, RGB pixels).
pub fn decode_jpeg(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    let image = turbojpeg::decompress(jpeg, PixelFormat::RGB).expect("our output is a JPEG");
    (image.width, image.height, image.pixels)
}

/// The pixel at (`x`, `y`) of a decoded RGB image `width` wide.
pub fn pixel(pixels: &[u8], width: usize, x: usize, y: usize) -> [u8; 3] {
    let at = (y * width + x) * 3;
    [pixels[at], pixels[at + 1], pixels[at + 2]]
}

/// Whether two colours are within `tolerance` per channel (JPEG is lossy).
pub fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}
