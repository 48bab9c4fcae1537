//! Image formats we accept and the sizes we make, shared so the api refuses
//! and names files by the same rules the worker decodes and stores by.

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
}
