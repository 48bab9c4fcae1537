//! `imaging::process` on images made in the test: sizes, EXIF
//! orientation, colour handling, limits and broken input.

use std::time::{Duration, Instant};

use imaging::{ImageError, Limits, Processed, Variant, process};
use testkit::images::{
    close, cmyk_jpeg, decode_jpeg, jpeg, photo, pixel, rgb, rgb16_png, rgba_png, webp,
    with_exif_orientation,
};

const MAX_PIXELS: u64 = 50_000_000;
/// The default decode budget.
const MAX_DECODE_BYTES: u64 = 100 * 1024 * 1024;

fn limits(max_pixels: u64) -> Limits {
    Limits {
        max_pixels,
        max_decode_bytes: MAX_DECODE_BYTES,
        deadline: Instant::now() + Duration::from_secs(60),
    }
}

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];

/// Each output as (variant, width, height, pixels).
fn decoded(processed: &Processed) -> Vec<(Variant, usize, usize, Vec<u8>)> {
    processed
        .outputs
        .iter()
        .map(|output| {
            let (width, height, pixels) = decode_jpeg(&output.jpeg);
            (output.variant, width, height, pixels)
        })
        .collect()
}

#[test]
fn a_large_photo_becomes_three_centre_cropped_squares() {
    let (width, height) = (2400, 1600);
    let processed = process(
        &jpeg(width, height, &photo(width, height)),
        &limits(MAX_PIXELS),
    )
    .expect("a valid JPEG processes");
    assert_eq!((processed.width, processed.height), (2400, 1600));
    let sizes: Vec<(Variant, usize, usize)> = decoded(&processed)
        .into_iter()
        .map(|(variant, w, h, _)| (variant, w, h))
        .collect();
    assert_eq!(
        sizes,
        [
            (Variant::Large, 1200, 1200),
            (Variant::Medium, 600, 600),
            (Variant::Thumbnail, 150, 150),
        ]
    );
}

#[test]
fn the_crop_is_the_centre_of_the_photo() {
    // Red borders left and right, blue in the middle square.
    let (width, height) = (900, 300);
    let pixels = rgb(width, height, |x, _| {
        if (300..600).contains(&x) { BLUE } else { RED }
    });
    let processed = process(&jpeg(width, height, &pixels), &limits(MAX_PIXELS)).expect("processes");
    for (variant, side, _, pixels) in decoded(&processed) {
        for (x, y) in [(2, 2), (side - 3, side / 2), (side / 2, side - 3)] {
            assert!(
                close(pixel(&pixels, side, x, y), BLUE, 40),
                "{variant:?} at {x},{y}"
            );
        }
    }
}

#[test]
fn a_small_photo_is_never_enlarged() {
    let processed = process(&jpeg(40, 30, &photo(40, 30)), &limits(MAX_PIXELS)).expect("processes");
    for (variant, width, height, _) in decoded(&processed) {
        assert_eq!((width, height), (30, 30), "{variant:?}");
    }
    let processed =
        process(&jpeg(800, 1000, &photo(800, 1000)), &limits(MAX_PIXELS)).expect("processes");
    let sides: Vec<usize> = decoded(&processed).iter().map(|o| o.1).collect();
    assert_eq!(sides, [800, 600, 150]);
}

#[test]
fn exif_orientation_turns_a_phone_photo_upright() {
    // Stored sideways: left half red, right half blue. Orientation 6 says
    // "rotate 90° clockwise", so upright the red is on top.
    let (width, height) = (400, 200);
    let pixels = rgb(width, height, |x, _| if x < 200 { RED } else { BLUE });
    let sideways = with_exif_orientation(&jpeg(width, height, &pixels), 6);
    let processed = process(&sideways, &limits(MAX_PIXELS)).expect("processes");
    assert_eq!(
        (processed.width, processed.height),
        (200, 400),
        "upright size"
    );
    for (variant, side, _, pixels) in decoded(&processed) {
        let (top, bottom) = (side / 8, side - side / 8);
        assert!(
            close(pixel(&pixels, side, side / 4, top), RED, 40),
            "{variant:?} top"
        );
        assert!(
            close(pixel(&pixels, side, side * 3 / 4, top), RED, 40),
            "{variant:?} top"
        );
        assert!(
            close(pixel(&pixels, side, side / 4, bottom), BLUE, 40),
            "{variant:?} bottom"
        );
    }
}

#[test]
fn colours_are_normalised_to_8_bit_rgb() {
    let cases = [
        ("CMYK JPEG", cmyk_jpeg(64, 64, [0, 255, 255, 0]), RED),
        (
            "transparent PNG",
            rgba_png(64, 64, [0, 0, 0, 0]),
            [255, 255, 255],
        ),
        (
            "half-transparent PNG",
            rgba_png(64, 64, [0, 0, 255, 128]),
            [127, 127, 255],
        ),
        ("16-bit PNG", rgb16_png(64, 64, [0, 0, 65535]), BLUE),
        ("WebP", webp(64, 64, [0, 200, 0]), [0, 200, 0]),
    ];
    for (case, bytes, expected) in cases {
        let processed =
            process(&bytes, &limits(MAX_PIXELS)).unwrap_or_else(|e| panic!("{case}: {e}"));
        for (variant, side, _, pixels) in decoded(&processed) {
            let got = pixel(&pixels, side, side / 2, side / 2);
            assert!(close(got, expected, 24), "{case} {variant:?}: {got:?}");
        }
    }
}

#[test]
fn broken_or_foreign_input_is_refused_with_a_reason() {
    let valid = jpeg(300, 200, &photo(300, 200));
    let truncated = &valid[..valid.len() / 2];
    let mut garbage = vec![0xFF, 0xD8, 0xFF, 0xE0];
    garbage.extend((0..2000_u32).map(|i| (i * 31 % 251) as u8));
    assert!(matches!(
        process(truncated, &limits(MAX_PIXELS)),
        Err(ImageError::Corrupt(_))
    ));
    assert!(matches!(
        process(&garbage, &limits(MAX_PIXELS)),
        Err(ImageError::Corrupt(_))
    ));
    assert!(matches!(
        process(b"GIF89a\x01\0\x01\0", &limits(MAX_PIXELS)),
        Err(ImageError::Unsupported)
    ));
    assert!(matches!(
        process(b"", &limits(MAX_PIXELS)),
        Err(ImageError::Unsupported)
    ));
}

#[test]
fn more_pixels_than_allowed_are_refused_before_decoding() {
    let bytes = jpeg(2000, 1000, &photo(2000, 1000));
    let error = process(&bytes, &limits(1_000_000)).expect_err("over the limit");
    assert!(matches!(
        error,
        ImageError::TooManyPixels {
            width: 2000,
            height: 1000,
            ..
        }
    ));
    assert!(error.to_string().contains("2000×1000"), "{error}");
    let png = rgba_png(2000, 1000, [0, 0, 0, 255]);
    assert!(matches!(
        process(&png, &limits(1_000_000)),
        Err(ImageError::TooManyPixels { .. })
    ));
}

#[test]
fn work_past_its_deadline_stops_with_a_reason() {
    let bytes = jpeg(1600, 1200, &photo(1600, 1200));
    let passed = Limits {
        deadline: Instant::now(),
        ..limits(MAX_PIXELS)
    };
    assert!(matches!(process(&bytes, &passed), Err(ImageError::TooSlow)));
}

#[test]
fn scans_are_counted_without_decoding() {
    let baseline = jpeg(320, 240, &photo(320, 240));
    let progressive = testkit::images::progressive(&baseline);
    assert_eq!(imaging::decode::jpeg_scans(&baseline), 1);
    assert_eq!(imaging::decode::jpeg_scans(&progressive), 10);
    let bomb = testkit::images::scan_bomb(&progressive, 100);
    assert_eq!(imaging::decode::jpeg_scans(&bomb), 110);
    assert!(matches!(
        process(&bomb, &limits(MAX_PIXELS)),
        Err(ImageError::TooManyScans { scans: 110, .. })
    ));
}

#[test]
fn what_the_uploader_is_told_names_no_decoder_internals() {
    let garbage = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1];
    let error = process(&garbage, &limits(MAX_PIXELS)).expect_err("garbage");
    let (code, message) = error.public();
    assert_eq!(code, "image_unreadable");
    assert!(!message.contains("header"), "{message}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever bytes follow a format's signature, processing answers with
    /// pixels or a reason, and never panics.
    #[test]
    fn any_bytes_after_a_signature_are_processed_or_refused(
        signature in 0..3_usize,
        rest in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
    ) {
        let head: &[u8] = match signature {
            0 => b"\xFF\xD8\xFF",
            1 => b"\x89PNG\r\n\x1a\n",
            _ => b"RIFF\0\0\0\0WEBP",
        };
        let file = [head, &rest].concat();
        imaging::decode::jpeg_scans(&file);
        let _ = process(&file, &limits(MAX_PIXELS));
    }
}
