//! `image-resize`: the three sizes of an uploaded profile photo, then the
//! switch of the user's avatar to it.
//!
//! Idempotent: outputs go to deterministic keys, and the avatar switches in
//! the same transaction that marks the photo ready, so a retry redoes the
//! work at worst. A photo that cannot be decoded fails at once, with the
//! reason on the photo and the job; it never burns through retries.

use catalogue::ImageResize;
use serde_json::{Value, json};
use storage::keys;
use store::photos;
use store::photos::PhotoState;
use store::records::PublicError;
use uuid::Uuid;

use super::{JobMeta, Perform, on_blocking_pool};
use crate::context::JobContext;
use crate::error::{Classify, JobError};
use imaging::ImageError;

impl Perform for ImageResize {
    const SERVICE: &'static str = "Photo processing";

    async fn perform(self, ctx: &JobContext, job: &JobMeta) -> Result<Value, JobError> {
        let ImageResize { user_id, photo_id } = self;
        let Some(state) = photos::state(&ctx.pool, photo_id, user_id).await? else {
            return Err(JobError::Permanent(anyhow::anyhow!(
                "photo {photo_id} no longer exists"
            )));
        };
        if state == PhotoState::Ready {
            return Ok(json!({ "skipped": "already resized" }));
        }

        let original = ctx
            .storage
            .read(&keys::photo_original(photo_id))
            .await
            .transient("could not read the original from storage")?
            .ok_or_else(|| {
                JobError::Permanent(anyhow::anyhow!(
                    "the original of photo {photo_id} is missing"
                ))
            })?;
        job.progress(ctx, 10).await;
        job.log(&format!("original read: {} bytes", original.len()))
            .await;

        let limits = imaging::Limits {
            max_pixels: ctx.photos.max_pixels,
            max_decode_bytes: ctx.photos.max_decode_bytes,
            deadline: job.deadline,
        };
        let processed =
            on_blocking_pool("the resizer", move || imaging::process(&original, &limits)).await?;
        let processed = match processed {
            Ok(processed) => processed,
            Err(error) => return Err(reject(ctx, photo_id, error).await),
        };
        job.progress(ctx, 50).await;
        job.log(&format!(
            "decoded {}×{}; {} sizes made",
            processed.width,
            processed.height,
            processed.outputs.len()
        ))
        .await;

        let mut sizes = serde_json::Map::new();
        for output in processed.outputs {
            let key = keys::photo_variant(photo_id, output.variant);
            ctx.storage
                .put(&key, output.jpeg, "image/jpeg")
                .await
                .transient("could not store a resized photo")?;
            sizes.insert(output.variant.name().to_owned(), output.side.into());
            job.progress(ctx, 50 + 15 * sizes.len() as i16).await;
            job.log(&format!(
                "stored {} ({} px)",
                output.variant.name(),
                output.side
            ))
            .await;
        }

        let switched = photos::mark_ready(
            &ctx.pool,
            photo_id,
            user_id,
            (processed.width, processed.height),
        )
        .await?;
        Ok(json!({
            "width": processed.width,
            "height": processed.height,
            "sizes": sizes,
            "avatar": switched,
        }))
    }
}

/// Records why the photo cannot be used, in the uploader's words, and
/// fails the job for good; the decoder's own message stays in the logs.
async fn reject(ctx: &JobContext, photo_id: Uuid, error: ImageError) -> JobError {
    let (code, message) = error.public();
    if let Err(db) = photos::mark_failed(&ctx.pool, photo_id, &message).await {
        return JobError::from(db);
    }
    JobError::rejected(PublicError { code, message }, anyhow::Error::new(error))
}
