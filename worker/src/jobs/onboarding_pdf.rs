//! `onboarding-pdf`: renders the user's getting-started guide and stores it.
//!
//! Idempotent: the file goes to a deterministic key, so a retry overwrites
//! its own output, and a user whose guide is recorded is left alone.
//! Rendering is CPU work and runs on the blocking pool.

use std::sync::Arc;

use catalogue::OnboardingPdf;
use serde_json::{Value, json};
use storage::keys;
use store::users;

use super::{JobMeta, Perform, on_blocking_pool};
use crate::context::JobContext;
use crate::error::{Classify, JobError};
use crate::pdf::Onboarding;

impl Perform for OnboardingPdf {
    const SERVICE: &'static str = "Document generation";

    async fn perform(self, ctx: &JobContext, job: &JobMeta) -> Result<Value, JobError> {
        let Some(user) = sqlx::query!(
            "select name, created_at, onboarding_pdf_key from users where user_id = $1 and deleting_since is null",
            self.user_id,
        )
        .fetch_optional(&ctx.pool)
        .await?
        else {
            return Err(JobError::user_gone(self.user_id));
        };
        if let Some(key) = user.onboarding_pdf_key {
            return Ok(json!({ "skipped": "already rendered", "key": key }));
        }

        let renderer = Arc::clone(&ctx.guide_renderer);
        let dashboard_url = format!("{}/", ctx.links.public_url);
        let document = on_blocking_pool("the PDF renderer", move || {
            renderer.render(&Onboarding {
                name: &user.name,
                signup_date: user.created_at.date_naive(),
                dashboard_url: &dashboard_url,
            })
        })
        .await?
        // The same template, fonts and name will fail the same way next time.
        .map_err(JobError::Permanent)?;

        let unsupported: String = document.unsupported.iter().collect();
        let key = keys::onboarding_pdf(self.user_id);
        let size = document.bytes.len();
        job.log(&format!("rendered {} pages, {size} bytes", document.pages))
            .await;
        ctx.storage
            .put(&key, document.bytes, "application/pdf")
            .await
            .transient("could not store the PDF")?;
        users::set_onboarding_pdf(&ctx.pool, self.user_id, &key).await?;
        job.log(&format!("stored at {key}")).await;
        let mut result = json!({ "key": key, "pages": document.pages, "bytes": size });
        // Still worth delivering (the rest of the guide is fine), but say so.
        if !unsupported.is_empty() {
            tracing::warn!(%unsupported, "the PDF fonts cannot draw some characters of the name");
            result["unsupported_characters"] = unsupported.into();
        }
        Ok(result)
    }
}
