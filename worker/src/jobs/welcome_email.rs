//! `welcome-email`: greets a new user by email.
//!
//! Idempotent: `users.welcome_email_sent_at` is set after the hand-over, and
//! a job that finds it set does nothing. Delivery is at-least-once: a crash
//! between the SMTP hand-over and that update can send a second email, which
//! beats never sending one.

use catalogue::WelcomeEmail;
use serde_json::{Value, json};
use store::users;

use super::{JobMeta, Perform};
use crate::context::JobContext;
use crate::email::recipient;
use crate::error::{Classify, JobError};

impl Perform for WelcomeEmail {
    const SERVICE: &'static str = "Email delivery";

    async fn perform(self, ctx: &JobContext, job: &JobMeta) -> Result<Value, JobError> {
        let Some(user) = sqlx::query!(
            "select email, name, welcome_email_sent_at from users where user_id = $1 and deleting_since is null",
            self.user_id,
        )
        .fetch_optional(&ctx.pool)
        .await?
        else {
            return Err(JobError::user_gone(self.user_id));
        };
        if let Some(sent_at) = user.welcome_email_sent_at {
            return Ok(json!({ "skipped": "already sent", "sent_at": sent_at }));
        }

        let email = ctx
            .templates
            .render(
                "welcome",
                json!({ "name": user.name, "dashboard_url": format!("{}/", ctx.links.public_url) }),
            )
            .permanent("could not render the welcome email")?;
        let to = recipient(Some(user.name), &user.email)?;
        ctx.mailer.send(to, &email, &job.id).await?;

        users::mark_welcome_email_sent(&ctx.pool, self.user_id).await?;
        Ok(json!({ "delivered_to": user.email, "transport": ctx.mailer.transport_name() }))
    }
}
