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
    with_segment(jpeg, 0xE1, &[b"Exif\0\0".as_slice(), &tiff].concat())
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

/// `jpeg` rewritten losslessly as a progressive JPEG (libjpeg's default
/// script: ten scans for colour).
pub fn progressive(jpeg: &[u8]) -> Vec<u8> {
    let transform = turbojpeg::Transform {
        progressive: true,
        ..turbojpeg::Transform::default()
    };
    turbojpeg::Transformer::new()
        .expect("turbojpeg initialises")
        .transform_to_vec(&transform, jpeg)
        .expect("the JPEG transforms")
}

/// A scan bomb: a progressive JPEG whose last scan (a refinement pass over
/// every block) is repeated `copies` more times. A few bytes each, and each
/// one a full pass for the decoder.
pub fn scan_bomb(progressive: &[u8], copies: usize) -> Vec<u8> {
    let last_scan = progressive
        .windows(2)
        .rposition(|pair| pair == [0xFF, 0xDA])
        .expect("a progressive JPEG has scans");
    let end = progressive.len() - 2; // EOI
    let scan = &progressive[last_scan..end];
    let mut out = progressive[..end].to_vec();
    for _ in 0..copies {
        out.extend_from_slice(scan);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// `jpeg` carrying what a phone writes: an EXIF block with the camera make
/// `make` and a GPS position (48°51'24" N).
pub fn with_gps_exif(jpeg: &[u8], make: &str) -> Vec<u8> {
    let make = format!("{make}\0");
    let make_len = u32::try_from(make.len()).expect("a short make");
    // Offsets are from the TIFF header: IFD0 at 8 (2 entries), the make
    // right after it, then the GPS IFD (2 entries), then its rationals.
    let make_at = 8 + 2 + 2 * 12 + 4;
    let gps_at = make_at + make_len;
    let rationals_at = gps_at + 2 + 2 * 12 + 4;
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    let entry = |tiff: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        tiff.extend(tag.to_be_bytes());
        tiff.extend(kind.to_be_bytes());
        tiff.extend(count.to_be_bytes());
        tiff.extend(value);
    };
    tiff.extend(2_u16.to_be_bytes());
    entry(&mut tiff, 0x010F, 2, make_len, make_at.to_be_bytes()); // Make
    entry(&mut tiff, 0x8825, 4, 1, gps_at.to_be_bytes()); // GPSInfo
    tiff.extend([0; 4]);
    tiff.extend(make.as_bytes());
    tiff.extend(2_u16.to_be_bytes());
    entry(&mut tiff, 0x0001, 2, 2, *b"N\0\0\0"); // GPSLatitudeRef
    entry(&mut tiff, 0x0002, 5, 3, rationals_at.to_be_bytes()); // GPSLatitude
    tiff.extend([0; 4]);
    for (numerator, denominator) in [(48_u32, 1_u32), (51, 1), (24, 1)] {
        tiff.extend(numerator.to_be_bytes());
        tiff.extend(denominator.to_be_bytes());
    }
    with_segment(jpeg, 0xE1, &[b"Exif\0\0".as_slice(), &tiff].concat())
}

/// `jpeg` with `count` application segments of 60 000 bytes after its
/// start: its frame header then lies past what the api reads up front.
pub fn with_padding(jpeg: &[u8], count: usize) -> Vec<u8> {
    (0..count).fold(jpeg.to_vec(), |padded, _| {
        with_segment(&padded, 0xEF, &vec![0; 60_000])
    })
}

fn with_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
    let length = u16::try_from(payload.len() + 2).expect("a segment fits 64 KiB");
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xFF, marker]);
    out.extend(length.to_be_bytes());
    out.extend(payload);
    out.extend(&jpeg[2..]);
    out
}

/// The first bytes of a PNG as its header describes it: enough for the
/// api's checks, which judge a file by its header before storing it.
pub fn png_header(
    width: u32,
    height: u32,
    bit_depth: u8,
    color_type: u8,
    interlaced: bool,
) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    out.extend(width.to_be_bytes());
    out.extend(height.to_be_bytes());
    out.extend([bit_depth, color_type, 0, 0, u8::from(interlaced)]);
    out.extend([0; 4]); // CRC: not what is being tested
    out.extend([0; 64]);
    out
}

/// A 16-bit RGBA PNG, every pixel `color`: a flat picture compresses to
/// almost nothing, so a huge one is a small upload.
pub fn rgba16_png(width: u32, height: u32, color: [u16; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Sixteen);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().expect("the header encodes");
    let mut stream = writer.stream_writer().expect("a stream");
    let row: Vec<u8> = (0..width)
        .flat_map(|_| color.iter().flat_map(|c| c.to_be_bytes()))
        .collect();
    for _ in 0..height {
        std::io::Write::write_all(&mut stream, &row).expect("the row encodes");
    }
    stream.finish().expect("the PNG ends");
    writer.finish().expect("the PNG ends");
    out
}

/// A lossless WebP with transparency from RGBA pixels.
pub fn rgba_webp(width: u32, height: u32, rgba: Vec<u8>) -> Vec<u8> {
    encode(
        ImageBuffer::<Rgba<u8>, _>::from_raw(width, height, rgba)
            .expect("width × height × 4 bytes"),
        ImageFormat::WebP,
    )
}
