//! What our photo files are: the formats we accept, what decoding one
//! costs, and the sizes we make. One crate without dependencies, so the api
//! refuses, storage names and the worker decodes by the same rules.

/// The formats we accept, told apart by their first bytes, never by the
/// file name or the client's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 'PNG' 0D 0A 1A 0A`).
    Png,
    /// WebP (`'RIFF' <size> 'WEBP'`).
    WebP,
}

impl ImageFormat {
    /// The media type to serve the original with.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::WebP => "image/webp",
        }
    }
}

/// The sizes a photo is made in, largest first (the worker resizes each
/// from the one before). Their names are in storage keys and URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// 1200×1200, for profile pages.
    Large,
    /// 600×600, for cards.
    Medium,
    /// 150×150, for lists and comments.
    Thumbnail,
}

impl Variant {
    /// Largest first.
    pub const ALL: [Variant; 3] = [Variant::Large, Variant::Medium, Variant::Thumbnail];

    /// The side of the square, when the original is at least that big.
    pub const fn side(self) -> u32 {
        match self {
            Variant::Large => 1200,
            Variant::Medium => 600,
            Variant::Thumbnail => 150,
        }
    }

    /// The name in storage keys and in `/api/me`.
    pub const fn name(self) -> &'static str {
        match self {
            Variant::Large => "large",
            Variant::Medium => "medium",
            Variant::Thumbnail => "thumbnail",
        }
    }

    /// The variant called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|variant| variant.name() == name)
    }
}

/// The format of a file from its first 12 bytes; `None` for anything else.
pub fn sniff(head: &[u8]) -> Option<ImageFormat> {
    match head {
        [0xFF, 0xD8, 0xFF, ..] => Some(ImageFormat::Jpeg),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(ImageFormat::Png),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// What a file says about itself before any pixel is decoded: enough to
/// refuse it before allocating anything for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format.
    pub format: ImageFormat,
    /// Width in pixels, as stored.
    pub width: u32,
    /// Height in pixels, as stored.
    pub height: u32,
    /// Bytes the worker's decoder holds at once for this file: what
    /// `PHOTO_MAX_DECODE_BYTES` is compared with. It depends on how the file
    /// is stored (a progressive JPEG keeps every coefficient of the full-size
    /// image; an interlaced PNG must be decoded whole; a plain PNG or a
    /// baseline JPEG is reduced while it is read) as much as on its size.
    pub decode_bytes: u64,
    /// How the file is stored, for messages: "progressive JPEG", …
    pub kind: &'static str,
}

impl Header {
    /// Width × height.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// The short side photos are decoded at, at least, where the original has
/// it: the largest square we make.
pub const DECODE_MIN_SIDE: u32 = Variant::Large.side();

/// JPEGs are decoded at n/8 of their size: the smallest n whose short side
/// still reaches [`DECODE_MIN_SIDE`].
pub fn jpeg_eighths(width: u32, height: u32) -> u32 {
    let short = width.min(height);
    let wanted = DECODE_MIN_SIDE.min(short);
    (1..=8)
        .find(|n| (u64::from(short) * u64::from(*n)).div_ceil(8) >= u64::from(wanted))
        .unwrap_or(8)
}

/// A PNG is reduced while it is read by averaging `k`×`k` blocks: the
/// largest `k` that keeps the short side at [`DECODE_MIN_SIDE`] or more.
pub fn png_reduction(width: u32, height: u32) -> u32 {
    (width.min(height) / DECODE_MIN_SIDE).max(1)
}

/// The header of `head` (the file's first bytes), or `None` if they are
/// not enough to tell, or the file is not one of ours.
pub fn header(head: &[u8]) -> Option<Header> {
    match sniff(head)? {
        ImageFormat::Jpeg => jpeg_header(head),
        ImageFormat::Png => png_header(head),
        ImageFormat::WebP => webp_header(head),
    }
}

fn be16(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        bytes.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le24(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 3)?;
    Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

fn jpeg_header(head: &[u8]) -> Option<Header> {
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of fill bytes.
        while *head.get(at)? == 0xFF && *head.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *head.get(at)? != 0xFF {
            return None;
        }
        let marker = *head.get(at + 1)?;
        let length = be16(head, at + 2)? as usize;
        match marker {
            // SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                return jpeg_frame(head.get(at + 4..at + 2 + length)?, marker);
            }
            // Start of scan or end of image before any frame: not a photo.
            0xDA | 0xD9 => return None,
            _ => at += 2 + length,
        }
    }
}

fn jpeg_frame(frame: &[u8], marker: u8) -> Option<Header> {
    let height = be16(frame, 1)?;
    let width = be16(frame, 3)?;
    let components = usize::from(*frame.get(5)?);
    if width == 0 || height == 0 || components == 0 {
        return None;
    }
    let sampling: Vec<(u32, u32)> = (0..components)
        .map(|i| {
            let factors = *frame.get(6 + 3 * i + 1)?;
            Some((
                u32::from(factors >> 4).max(1),
                u32::from(factors & 0x0F).max(1),
            ))
        })
        .collect::<Option<_>>()?;
    let progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
    // A progressive JPEG's scans refine every coefficient of the whole image,
    // so the decoder keeps them all: 64 × 2 bytes per 8×8 block per component.
    let coefficients = if progressive {
        let h_max = sampling.iter().map(|s| s.0).max()?;
        let v_max = sampling.iter().map(|s| s.1).max()?;
        sampling
            .iter()
            .map(|&(h, v)| {
                let blocks_w = u64::from((width * h).div_ceil(h_max)).div_ceil(8);
                let blocks_h = u64::from((height * v).div_ceil(v_max)).div_ceil(8);
                blocks_w * blocks_h * 128
            })
            .sum()
    } else {
        0
    };
    let eighths = u64::from(jpeg_eighths(width, height));
    let scaled = |side: u32| (u64::from(side) * eighths).div_ceil(8);
    // CMYK is decoded to 4 bytes a pixel and converted in place.
    let channels = if components == 4 { 4 } else { 3 };
    let output = scaled(width) * scaled(height) * channels;
    Some(Header {
        format: ImageFormat::Jpeg,
        width,
        height,
        decode_bytes: coefficients + output,
        kind: if progressive {
            "progressive JPEG"
        } else {
            "JPEG"
        },
    })
}

fn png_header(head: &[u8]) -> Option<Header> {
    if head.get(12..16)? != b"IHDR" {
        return None;
    }
    let width = be32(head, 16)?;
    let height = be32(head, 20)?;
    let bit_depth = u64::from(*head.get(24)?);
    let color_type = *head.get(25)?;
    let interlaced = *head.get(28)? == 1;
    if width == 0 || height == 0 {
        return None;
    }
    // Samples per pixel once palettes and transparency are expanded.
    let samples = match color_type {
        0 => 2, // grey, with a possible tRNS
        2 | 3 | 6 => 4,
        4 => 2,
        _ => return None,
    };
    let sample_bytes = bit_depth.div_ceil(8).max(1);
    let row = u64::from(width) * samples * sample_bytes;
    let k = u64::from(png_reduction(width, height));
    let reduced = (u64::from(width) / k) * (u64::from(height) / k) * 3;
    let decode_bytes = if interlaced {
        // Adam7 delivers the picture in seven passes: it exists whole
        // before the first full row does.
        row * u64::from(height) + reduced
    } else {
        // Read a row at a time (the decoder keeps two) and averaged into
        // the reduced picture, with one row of running sums.
        2 * row + u64::from(width) * 3 * 4 + reduced
    };
    Some(Header {
        format: ImageFormat::Png,
        width,
        height,
        decode_bytes,
        kind: if interlaced { "interlaced PNG" } else { "PNG" },
    })
}

fn webp_header(head: &[u8]) -> Option<Header> {
    let chunk = head.get(12..16)?;
    let data = 20;
    let (width, height, alpha) = match chunk {
        b"VP8 " => {
            if head.get(data + 3..data + 6)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            let width = u32::from(
                u16::from_le_bytes(head.get(data + 6..data + 8)?.try_into().ok()?) & 0x3FFF,
            );
            let height = u32::from(
                u16::from_le_bytes(head.get(data + 8..data + 10)?.try_into().ok()?) & 0x3FFF,
            );
            (width, height, false)
        }
        b"VP8L" => {
            if *head.get(data)? != 0x2F {
                return None;
            }
            let bits = u32::from_le_bytes(head.get(data + 1..data + 5)?.try_into().ok()?);
            (
                (bits & 0x3FFF) + 1,
                ((bits >> 14) & 0x3FFF) + 1,
                bits >> 28 & 1 == 1,
            )
        }
        b"VP8X" => {
            let flags = *head.get(data)?;
            // Alpha (0x10) or animation (0x02): decoded as RGBA.
            (
                le24(head, data + 4)? + 1,
                le24(head, data + 7)? + 1,
                flags & 0x12 != 0,
            )
        }
        _ => return None,
    };
    if width == 0 || height == 0 {
        return None;
    }
    let channels = if alpha { 4 } else { 3 };
    // Lossy data is decoded to YUV 4:2:0 planes first (1.5 bytes a pixel).
    let planes = if chunk == b"VP8L" { 0 } else { 3 };
    let pixels = u64::from(width) * u64::from(height);
    Some(Header {
        format: ImageFormat::WebP,
        width,
        height,
        // Decoded whole (WebP has no scaled decoding); RGBA becomes RGB in place.
        decode_bytes: pixels * channels + pixels * planes / 2,
        kind: if alpha {
            "WebP with transparency"
        } else {
            "WebP"
        },
    })
}

#[cfg(test)]
mod tests {
    use super::{ImageFormat as Format, sniff};

    #[test]
    fn formats_are_told_apart_by_their_first_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(sniff(b"GIF89a......"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(sniff(b""), None);
    }

    proptest::proptest! {
        /// The header parser reads untrusted uploads: whatever follows a
        /// format's signature, it answers or says no, and never panics or
        /// claims a size its numbers do not support.
        #[test]
        fn any_bytes_after_a_signature_are_parsed_or_refused(
            signature in 0..3_usize,
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        ) {
            let head: &[u8] = match signature {
                0 => b"\xFF\xD8\xFF",
                1 => b"\x89PNG\r\n\x1a\n",
                _ => b"RIFF\0\0\0\0WEBP",
            };
            let file = [head, &rest].concat();
            if let Some(header) = super::header(&file) {
                proptest::prop_assert!(header.width > 0 && header.height > 0);
                proptest::prop_assert!(header.decode_bytes > 0);
            }
        }
    }
}
