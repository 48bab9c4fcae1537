//! Profile photos: what the api accepts and the worker decodes.

use super::variables::{Nested, Parsed, Variable as _, variables};

/// Profile photos: what the api accepts and the worker decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoSettings {
    /// Largest upload accepted, in bytes (`PHOTO_MAX_BYTES`).
    pub max_bytes: u64,
    /// Largest photo accepted, in pixels (width × height), against
    /// decompression bombs (`PHOTO_MAX_PIXELS`).
    pub max_pixels: u64,
    /// Most bytes one photo's decoder may hold, judged from the file's
    /// header (`PHOTO_MAX_DECODE_BYTES`): worker memory is at most this
    /// times the image-resize concurrency, whatever is uploaded.
    pub max_decode_bytes: u64,
    /// Per-account and per-instance limits on uploads.
    pub uploads: UploadLimits,
}

variables! {
    PhotoSettings {
        max_bytes: Parsed("PHOTO_MAX_BYTES", 20 * 1024 * 1024),
        max_pixels: Parsed("PHOTO_MAX_PIXELS", 50_000_000),
        max_decode_bytes: Parsed("PHOTO_MAX_DECODE_BYTES", 100 * 1024 * 1024),
        uploads: Nested,
    }
}

/// Photo uploads: per account and per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Uploads per account per hour; then 429 (`PHOTO_UPLOADS_PER_HOUR`, 0 = off).
    pub per_hour: u32,
    /// Bytes of photos an account may have stored, replaced ones included
    /// until they are cleaned up (`PHOTO_QUOTA_BYTES`, 0 = off).
    pub quota_bytes: u64,
    /// Uploads in progress at once on one instance; more get 503
    /// (`PHOTO_MAX_CONCURRENT_UPLOADS`).
    pub max_concurrent: usize,
    /// Uploads in progress at once per account, on all instances together;
    /// more get 429 (`PHOTO_MAX_CONCURRENT_UPLOADS_PER_ACCOUNT`, 0 = off).
    /// Without it, two accounts trickling bodies at the minimum pace hold
    /// every upload slot of an instance.
    pub max_concurrent_per_account: u32,
}

variables! {
    UploadLimits {
        per_hour: Parsed("PHOTO_UPLOADS_PER_HOUR", 20),
        quota_bytes: Parsed("PHOTO_QUOTA_BYTES", 200 * 1024 * 1024),
        max_concurrent: Parsed("PHOTO_MAX_CONCURRENT_UPLOADS", 32).at_least(1),
        max_concurrent_per_account: Parsed("PHOTO_MAX_CONCURRENT_UPLOADS_PER_ACCOUNT", 2),
    }
}
