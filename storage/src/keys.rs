//! The keys files are stored under, in one place: deterministic, so a
//! retried job overwrites its own output.

use uuid::Uuid;

use media::Variant;

/// The onboarding guide of `user_id`.
pub fn onboarding_pdf(user_id: Uuid) -> String {
    format!("users/{user_id}/onboarding.pdf")
}

/// An uploaded photo as the user sent it.
pub fn photo_original(photo_id: Uuid) -> String {
    format!("photos/{photo_id}/original")
}

/// One resized size of a photo.
pub fn photo_variant(photo_id: Uuid, variant: Variant) -> String {
    format!("photos/{photo_id}/{}.jpg", variant.name())
}
