//! Turning an uploaded file into 8-bit RGB pixels, within a budget.
//!
//! Every file is judged by its header before anything is allocated for it
//! ([`media::header`]: pixels, and the bytes its decoder will hold),
//! and every decoder holds no more than that: JPEGs are decoded scaled
//! down, plain PNGs are reduced row by row as they are read, and RGBA
//! becomes RGB in place. No full-size copy is ever made.

use std::io::Cursor;
use std::time::Instant;

use image::metadata::Orientation;
use image::{ImageDecoder, RgbImage};
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat};

use media::{Header, ImageFormat as Format, header, jpeg_eighths, png_reduction};

use super::ImageError;

/// What one photo may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest photo, in pixels (`PHOTO_MAX_PIXELS`).
    pub max_pixels: u64,
    /// Most bytes one decode may hold (`PHOTO_MAX_DECODE_BYTES`).
    pub max_decode_bytes: u64,
    /// When the job gives up: work checks it between steps and stops.
    pub deadline: Instant,
}

impl Limits {
    /// Fails once the deadline has passed.
    pub fn check_time(&self) -> Result<(), ImageError> {
        if Instant::now() >= self.deadline {
            Err(ImageError::TooSlow)
        } else {
            Ok(())
        }
    }
}

/// A progressive JPEG is decoded scan by scan, each scan a pass over the
/// whole picture: the number of scans multiplies the work. Encoders write
/// 10 (libjpeg's default script) to about 20; a file with hundreds is
/// built to burn CPU. libjpeg-turbo's own limit (500, `TJFLAG_LIMITSCANS`)
/// is not reachable from the safe binding, so the scans are counted here.
pub const MAX_JPEG_SCANS: usize = 64;

/// Decoded pixels, not yet turned upright.
pub struct Decoded {
    /// 8-bit RGB, possibly scaled down from the original.
    pub pixels: RgbImage,
    /// How to turn it upright (from EXIF).
    pub orientation: Orientation,
    /// The original's size in pixels, as stored (before orientation).
    pub original: (u32, u32),
}

/// Decodes `bytes` with at least [`media::DECODE_MIN_SIDE`]
/// pixels on the short side where the original has them, within `limits`.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Decoded, ImageError> {
    let format = media::sniff(bytes).ok_or(ImageError::Unsupported)?;
    let header = header(bytes).ok_or_else(|| corrupt("its header cannot be read"))?;
    check(&header, limits)?;
    match format {
        Format::Jpeg => decode_jpeg(bytes, &header),
        Format::Png => decode_png(bytes, &header, limits),
        Format::WebP => decode_webp(bytes),
    }
}

/// Refuses a file whose header says it is too big to decode. The api runs
/// the same check at upload, so most such files never reach a job.
pub fn check(header: &Header, limits: &Limits) -> Result<(), ImageError> {
    if header.pixels() > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width: header.width.into(),
            height: header.height.into(),
            max: limits.max_pixels,
        });
    }
    if header.decode_bytes > limits.max_decode_bytes {
        return Err(ImageError::TooCostly {
            kind: header.kind,
            width: header.width,
            height: header.height,
            needed: header.decode_bytes,
            budget: limits.max_decode_bytes,
        });
    }
    Ok(())
}

fn corrupt(error: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt(error.to_string())
}

fn decode_jpeg(bytes: &[u8], header: &Header) -> Result<Decoded, ImageError> {
    let scans = jpeg_scans(bytes);
    if scans > MAX_JPEG_SCANS {
        return Err(ImageError::TooManyScans {
            scans,
            max: MAX_JPEG_SCANS,
        });
    }
    let mut decompressor = Decompressor::new().map_err(corrupt)?;
    let stored = decompressor.read_header(bytes).map_err(corrupt)?;
    let (width, height) = (stored.width, stored.height);
    if (width as u64, height as u64) != (header.width.into(), header.height.into()) {
        return Err(corrupt("its header contradicts itself"));
    }
    let eighths = jpeg_eighths(header.width, header.height) as usize;
    let scaled = |side: usize| (side * eighths).div_ceil(8);
    let (out_width, out_height) = (scaled(width), scaled(height));

    // Photoshop's CMYK JPEGs (the common kind) store inverted ink values;
    // libjpeg-turbo hands them over as stored and converting is ours to do.
    let cmyk = matches!(stored.colorspace, Colorspace::CMYK | Colorspace::YCCK);
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
        // In place: pixel i's three bytes go where its four were read from
        // or earlier, so no second buffer is needed.
        for i in 0..out_width * out_height {
            let (c, m, y, k) = (
                pixels[4 * i],
                pixels[4 * i + 1],
                pixels[4 * i + 2],
                pixels[4 * i + 3],
            );
            let ink = |channel: u8| ((u16::from(channel) * u16::from(k) + 127) / 255) as u8;
            pixels[3 * i] = ink(c);
            pixels[3 * i + 1] = ink(m);
            pixels[3 * i + 2] = ink(y);
        }
        pixels.truncate(out_width * out_height * 3);
        pixels.shrink_to_fit();
    }
    let pixels = RgbImage::from_raw(out_width as u32, out_height as u32, pixels)
        .ok_or_else(|| corrupt("decoded buffer has the wrong size"))?;
    Ok(Decoded {
        pixels,
        orientation: jpeg_orientation(bytes).unwrap_or(Orientation::NoTransforms),
        original: (header.width, header.height),
    })
}

/// How many scans (SOS markers) a JPEG has: its segments are walked, and
/// each scan's entropy-coded data skipped to the next marker. Linear in the
/// file and allocation-free, so counting costs nothing next to decoding.
pub fn jpeg_scans(bytes: &[u8]) -> usize {
    let mut scans = 0;
    let mut at = 2; // after SOI
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return scans; // lost: let the decoder say what is wrong
        }
        let marker = bytes[at + 1];
        match marker {
            0xFF => at += 1, // fill byte
            0xD9 => return scans,
            0x01 | 0xD0..=0xD7 => at += 2, // no length
            _ => {
                let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
                at += 2 + length;
                if marker == 0xDA {
                    scans += 1;
                    // Entropy-coded data: 0xFF is followed by 0x00 (a
                    // stuffed byte) or a restart marker, until the next marker.
                    while at + 1 < bytes.len()
                        && !(bytes[at] == 0xFF
                            && bytes[at + 1] != 0x00
                            && !(0xD0..=0xD7).contains(&bytes[at + 1]))
                    {
                        at += 1;
                    }
                }
            }
        }
    }
    scans
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

/// PNG: palettes expanded and 16-bit samples cut to 8 by the decoder, then
/// `k`×`k` blocks averaged into the reduced picture as rows arrive, with
/// transparency flattened onto white. A plain PNG is never whole in memory;
/// an interlaced one must be (its budget says so).
fn decode_png(bytes: &[u8], header: &Header, limits: &Limits) -> Result<Decoded, ImageError> {
    let decoder_limit = usize::try_from(limits.max_decode_bytes).unwrap_or(usize::MAX);
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: decoder_limit,
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    if (width, height) != (header.width, header.height) {
        return Err(corrupt("its header contradicts itself"));
    }
    let orientation = info
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let channels = reader.output_color_type().0.samples();
    let mut reducer = Reducer::new(width, height, png_reduction(width, height), channels);
    if info.interlaced {
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| corrupt("it is too large"))?;
        let mut whole = vec![0; size];
        let frame = reader.next_frame(&mut whole).map_err(corrupt)?;
        limits.check_time()?;
        for row in whole.chunks_exact(frame.line_size).take(height as usize) {
            reducer.push(row);
        }
    } else {
        let mut rows = 0_u32;
        while let Some(row) = reader.next_row().map_err(corrupt)? {
            reducer.push(row.data());
            rows += 1;
            if rows.is_multiple_of(256) {
                limits.check_time()?;
            }
        }
    }
    Ok(Decoded {
        pixels: reducer.finish()?,
        orientation,
        original: (width, height),
    })
}

/// Averages `k`×`k` blocks of 8-bit rows (grey, grey+alpha, RGB or RGBA)
/// into RGB on white, keeping one row of running sums.
struct Reducer {
    k: u32,
    channels: usize,
    out_width: u32,
    out_height: u32,
    sums: Vec<u32>,
    rows_seen: u32,
    out: Vec<u8>,
}

impl Reducer {
    fn new(width: u32, height: u32, k: u32, channels: usize) -> Self {
        let (out_width, out_height) = ((width / k).max(1), (height / k).max(1));
        Self {
            k,
            channels,
            out_width,
            out_height,
            sums: vec![0; out_width as usize * 3],
            rows_seen: 0,
            out: Vec::with_capacity(out_width as usize * out_height as usize * 3),
        }
    }

    fn push(&mut self, row: &[u8]) {
        if self.rows_seen / self.k >= self.out_height {
            return; // the remainder past the last whole block
        }
        let k = self.k as usize;
        for (x, pixel) in row
            .chunks_exact(self.channels)
            .take(self.out_width as usize * k)
            .enumerate()
        {
            let rgb = on_white(pixel);
            let sum = &mut self.sums[x / k * 3..x / k * 3 + 3];
            for channel in 0..3 {
                sum[channel] += u32::from(rgb[channel]);
            }
        }
        self.rows_seen += 1;
        if self.rows_seen.is_multiple_of(self.k) {
            let area = self.k * self.k;
            self.out
                .extend(self.sums.iter().map(|&sum| ((sum + area / 2) / area) as u8));
            self.sums.fill(0);
        }
    }

    fn finish(self) -> Result<RgbImage, ImageError> {
        RgbImage::from_raw(self.out_width, self.out_height, self.out)
            .ok_or_else(|| corrupt("it ends before its last row"))
    }
}

/// One pixel of 1–4 samples as RGB, transparency flattened onto white:
/// JPEG has none, and white is what a transparent avatar shows against on
/// most pages.
fn on_white(pixel: &[u8]) -> [u8; 3] {
    let (rgb, alpha) = match *pixel {
        [grey] => ([grey; 3], 255),
        [grey, alpha] => ([grey; 3], alpha),
        [r, g, b] => ([r, g, b], 255),
        [r, g, b, alpha, ..] => ([r, g, b], alpha),
        [] => ([255; 3], 0),
    };
    if alpha == 255 {
        return rgb;
    }
    let alpha = u16::from(alpha);
    rgb.map(|value| ((u16::from(value) * alpha + 255 * (255 - alpha) + 127) / 255) as u8)
}

/// WebP has no scaled or row-wise decoding: decoded whole (its budget says
/// so), RGBA turned into RGB on white in place.
fn decode_webp(bytes: &[u8]) -> Result<Decoded, ImageError> {
    let mut decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let channels = usize::from(decoder.color_type().bytes_per_pixel());
    let size = usize::try_from(decoder.total_bytes()).map_err(corrupt)?;
    let mut pixels = vec![0; size];
    decoder.read_image(&mut pixels).map_err(corrupt)?;
    if channels == 4 {
        let count = size / 4;
        for i in 0..count {
            let rgb = on_white(&pixels[4 * i..4 * i + 4]);
            pixels[3 * i..3 * i + 3].copy_from_slice(&rgb);
        }
        pixels.truncate(count * 3);
        pixels.shrink_to_fit();
    }
    let pixels = RgbImage::from_raw(width, height, pixels)
        .ok_or_else(|| corrupt("decoded buffer has the wrong size"))?;
    Ok(Decoded {
        pixels,
        orientation,
        original: (width, height),
    })
}

#[cfg(test)]
mod tests {
    use super::on_white;

    #[test]
    fn transparency_is_flattened_onto_white() {
        assert_eq!(on_white(&[0, 0, 0, 0]), [255, 255, 255]);
        assert_eq!(on_white(&[0, 0, 0, 255]), [0, 0, 0]);
        assert_eq!(on_white(&[0, 128]), [127, 127, 127]);
        assert_eq!(on_white(&[10]), [10, 10, 10]);
    }
}
