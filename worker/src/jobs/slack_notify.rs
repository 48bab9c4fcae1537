//! `slack-notify`: announces a signup in the team's Slack channel.
//!
//! The email is partly masked: a chat channel is not the place for personal
//! data. The message is plain text (`platform::slack`): what the user typed
//! (the name, the address's first letter and domain) can neither mention a
//! channel (`<!channel>`), disguise or make a link (`<https://evil|acme.com>`,
//! `https://evil.example`), nor be formatted (`*bold*`). The queue's default
//! rate limit (1 message/s) keeps a burst of signups within Slack's webhook
//! limit; if Slack still answers 429, the whole queue waits for its
//! `Retry-After`.

use std::time::Duration;

use anyhow::anyhow;
use catalogue::SlackNotify;
use platform::slack;
use reqwest::header::RETRY_AFTER;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{JobMeta, Perform};
use crate::context::JobContext;
use crate::error::{Classify, JobError};

impl Perform for SlackNotify {
    const SERVICE: &'static str = "Team notification";

    async fn perform(self, ctx: &JobContext, _job: &JobMeta) -> Result<Value, JobError> {
        let Some(webhook) = &ctx.providers.slack_webhook_url else {
            return Ok(json!({ "skipped": "SLACK_WEBHOOK_URL is not set" }));
        };
        let Some(user) = sqlx::query!(
            "select email, name from users where user_id = $1 and deleting_since is null",
            self.user_id,
        )
        .fetch_optional(&ctx.pool)
        .await?
        else {
            return Err(JobError::user_gone(self.user_id));
        };
        let text = format!(
            ":tada: New signup: {} ({})",
            slack::inert(&user.name),
            slack::inert(&mask_email(&user.email))
        );

        let response = ctx
            .http
            .post(webhook.expose_secret())
            .json(&slack::body(&text))
            .send()
            .await
            // The webhook URL is the secret: keep it out of logs and job records.
            .map_err(reqwest::Error::without_url)
            .transient("could not reach Slack")?;
        let status = response.status();
        if status.is_success() {
            return Ok(json!({ "posted": text }));
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.text().await.unwrap_or_default();
        let error = anyhow!("Slack answered {status}: {}", body.trim());
        Err(JobError::from_status(status, error, |error| {
            JobError::RateLimited(retry_after.unwrap_or(Duration::from_secs(1)), error)
        }))
    }
}

/// `ada.lovelace@example.com` → `a***@example.com`: enough for a colleague
/// to recognise a signup, not enough to harvest addresses from a channel.
fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_email;

    #[test]
    fn emails_keep_their_first_letter_and_domain_only() {
        assert_eq!(mask_email("ada.lovelace@example.com"), "a***@example.com");
        assert_eq!(mask_email("b@x.io"), "b***@x.io");
        assert_eq!(mask_email("Ümit@exämple.de"), "Ü***@exämple.de");
    }
}
