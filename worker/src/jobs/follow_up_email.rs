//! `follow-up-email`: "finish setting up", due `FOLLOW_UP_DELAY_SECS` after
//! an account is verified. A day is long: by the time it runs the user may
//! have uploaded a photo, opted out of product mail, or left, so it checks
//! all of that when it runs, not when it was scheduled, and completes as
//! skipped with the reason when the email is no longer wanted.
//!
//! It is product mail: it carries a signed one-click unsubscribe link
//! (`List-Unsubscribe`, RFC 8058) and a visible one. Idempotent like the
//! welcome email: `users.follow_up_sent_at` is set after the hand-over.

use catalogue::FollowUpEmail;
use serde_json::{Value, json};
use store::users;

use super::{JobMeta, Perform};
use crate::context::JobContext;
use crate::email::recipient;
use crate::error::{Classify, JobError};

impl Perform for FollowUpEmail {
    const SERVICE: &'static str = "Email delivery";

    async fn perform(self, ctx: &JobContext, job: &JobMeta) -> Result<Value, JobError> {
        let skipped = |reason: &str| Ok(json!({ "skipped": reason }));
        let Some(key) = &ctx.unsubscribe else {
            return skipped("product email is off: UNSUBSCRIBE_SECRET is not set");
        };
        let Some(user) = sqlx::query!(
            r#"select email, name, follow_up_sent_at is not null as "sent!",
                      product_email_unsubscribed_at is not null as "unsubscribed!",
                      avatar_photo_id is not null
                        or exists (select 1 from photos p
                                   where p.user_id = users.user_id and p.state = 'processing')
                        as "has_photo!"
               from users where user_id = $1 and deleting_since is null"#,
            self.user_id,
        )
        .fetch_optional(&ctx.pool)
        .await?
        else {
            return skipped("the account no longer exists");
        };
        if user.sent {
            return skipped("sent already");
        }
        if user.unsubscribed {
            return skipped("the user unsubscribed from product email");
        }
        if user.has_photo {
            return skipped("the user has a profile photo already");
        }

        let token = key.token(self.user_id);
        // The header's link takes the one-click POST; the visible one opens
        // a page that asks first (a link scanner's GET changes nothing).
        let one_click = format!(
            "{}/api/email/unsubscribe?token={token}",
            ctx.links.public_url
        );
        let email = ctx
            .templates
            .render(
                "follow-up",
                json!({
                    "name": user.name,
                    "upload_url": format!("{}/", ctx.links.public_url),
                    "unsubscribe_url": format!("{}/unsubscribe#token={token}", ctx.links.public_url),
                }),
            )
            .permanent("could not render the follow-up email")?;
        let to = recipient(Some(user.name), &user.email)?;
        ctx.mailer
            .send_product(to, &email, &job.id, &one_click)
            .await?;
        users::mark_follow_up_sent(&ctx.pool, self.user_id).await?;
        Ok(json!({ "delivered_to": user.email, "transport": ctx.mailer.transport_name() }))
    }
}
