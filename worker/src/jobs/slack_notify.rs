//! `slack-notify`: announces signups in the team's Slack channel.
//!
//! The queue is batched (`catalogue::Batch`): one message carries every
//! signup the worker holds, at most one message a second across all
//! workers, which is what a Slack webhook accepts. A message names the
//! first [`NAMED`] signups and counts the rest, within Slack's size. A
//! signup whose user was deleted meanwhile is left out of the message and
//! its job fails alone, as a single job would. If Slack answers 429 the
//! whole batch goes back and the queue waits for its `Retry-After`,
//! without spending attempts.
//!
//! The email is partly masked: a chat channel is not the place for personal
//! data. The message is plain text (`platform::slack`): what the user typed
//! (the name, the address's first letter and domain) can neither mention a
//! channel (`<!channel>`), disguise or make a link (`<https://evil|acme.com>`,
//! `https://evil.example`), nor be formatted (`*bold*`).

use std::collections::{HashMap, HashSet};

use anyhow::anyhow;
use catalogue::SlackNotify;
use platform::config::Provider;
use platform::slack;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{JobMeta, Perform};
use crate::context::JobContext;
use crate::error::{Classify, JobError};

/// The most signups a message names; the rest are counted ("and 57 more"),
/// so a busy second stays a message people read.
const NAMED: usize = 40;

/// Characters a message may take, escaped: Slack cuts a message's text
/// after 40,000.
const MESSAGE_BUDGET: usize = 38_000;

impl Perform for SlackNotify {
    const SERVICE: &'static str = "Team notification";

    async fn perform(self, ctx: &JobContext, job: &JobMeta) -> Result<Value, JobError> {
        let mut outcomes = Self::perform_batch(vec![(self, job)], ctx).await?;
        outcomes
            .pop()
            .unwrap_or_else(|| Err(JobError::Transient(anyhow!("no outcome for the job"))))
    }

    async fn perform_batch(
        batch: Vec<(Self, &JobMeta)>,
        ctx: &JobContext,
    ) -> Result<Vec<Result<Value, JobError>>, JobError> {
        let Some(webhook) = &ctx.providers.slack_webhook_url else {
            let skipped = json!({ "skipped": "SLACK_WEBHOOK_URL is not set" });
            return Ok(batch.iter().map(|_| Ok(skipped.clone())).collect());
        };
        let user_ids: Vec<Uuid> = batch.iter().map(|(job, _)| job.user_id).collect();
        let users: HashMap<Uuid, (String, String)> = sqlx::query!(
            "select user_id, email, name from users
             where user_id = any($1) and deleting_since is null",
            &user_ids,
        )
        .fetch_all(&ctx.pool)
        .await?
        .into_iter()
        .map(|user| (user.user_id, (user.name, user.email)))
        .collect();
        let line = |(name, email): &(String, String)| {
            format!(
                "{} ({})",
                slack::inert(name),
                slack::inert(&mask_email(email))
            )
        };
        // Each signup once, in the order the jobs came.
        let mut seen = HashSet::new();
        let signups: Vec<String> = user_ids
            .iter()
            .filter(|id| seen.insert(**id))
            .filter_map(|id| users.get(id))
            .map(line)
            .collect();
        if !signups.is_empty() {
            post(ctx, webhook.expose_secret(), &announcement(&signups)).await?;
        }
        // Each job's result is its owner's to read (`GET /api/jobs/{id}`):
        // it names them alone, never the others the message carried, nor
        // how many there were (our signups a second are not theirs to
        // learn). A message for one signup is posted as it stands.
        Ok(user_ids
            .iter()
            .map(|id| match users.get(id) {
                Some(_) if signups.len() == 1 => Ok(json!({ "posted": announcement(&signups) })),
                Some(user) => Ok(json!({ "posted": line(user) })),
                None => Err(JobError::user_gone(*id)),
            })
            .collect())
    }
}

/// The message for `signups` (each already inert): one is announced as it
/// always was; more are listed, the first [`NAMED`] by name (as many as fit
/// in [`MESSAGE_BUDGET`]), the rest counted.
fn announcement(signups: &[String]) -> String {
    if let [one] = signups {
        return format!(":tada: New signup: {one}");
    }
    let mut text = format!(":tada: {} new signups:", signups.len());
    let mut used = slack::sent_chars(&text);
    // Room for the count line, whatever its number.
    let budget = MESSAGE_BUDGET - 40;
    let mut named = 0;
    for signup in signups.iter().take(NAMED) {
        let line = format!("\n• {signup}");
        let chars = slack::sent_chars(&line);
        if used + chars > budget {
            break;
        }
        text.push_str(&line);
        used += chars;
        named += 1;
    }
    if named < signups.len() {
        text.push_str(&format!("\n… and {} more", signups.len() - named));
    }
    text
}

/// Posts `text` to the webhook, within Slack's budget; a 429 holds back
/// every caller of Slack for its `Retry-After`.
async fn post(ctx: &JobContext, webhook: &str, text: &str) -> Result<(), JobError> {
    ctx.budgets.take(Provider::Slack).await?;
    let response = ctx
        .http
        .post(webhook)
        .json(&slack::body(text))
        .send()
        .await
        // The webhook URL is the secret: keep it out of logs and job records.
        .map_err(reqwest::Error::without_url)
        .transient("could not reach Slack")?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = crate::budget::retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let error = anyhow!("Slack answered {status}: {}", body.trim());
    Err(ctx
        .budgets
        .refused(Provider::Slack, status, retry_after, error)
        .await)
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
    use super::*;

    #[test]
    fn emails_keep_their_first_letter_and_domain_only() {
        assert_eq!(mask_email("ada.lovelace@example.com"), "a***@example.com");
        assert_eq!(mask_email("b@x.io"), "b***@x.io");
        assert_eq!(mask_email("Ümit@exämple.de"), "Ü***@exämple.de");
    }

    #[test]
    fn one_signup_is_announced_as_it_always_was_and_several_are_listed() {
        assert_eq!(announcement(&["Ada".into()]), ":tada: New signup: Ada");
        assert_eq!(
            announcement(&["Ada".into(), "Grace".into()]),
            ":tada: 2 new signups:\n• Ada\n• Grace"
        );
    }

    #[test]
    fn a_long_list_names_the_first_ones_and_counts_the_rest() {
        let signups: Vec<String> = (0..97).map(|n| format!("user{n}")).collect();
        let text = announcement(&signups);
        assert!(
            text.starts_with(":tada: 97 new signups:\n• user0\n"),
            "{text}"
        );
        assert!(text.contains(&format!("\n• user{}\n", NAMED - 1)), "{text}");
        assert!(!text.contains(&format!("user{NAMED}")), "{text}");
        assert!(
            text.ends_with(&format!("\n… and {} more", 97 - NAMED)),
            "{text}"
        );
    }

    #[test]
    fn names_that_swell_when_escaped_still_fit_in_one_message() {
        // 300 `&` become 1,500 characters once escaped: fewer fit.
        let signups: Vec<String> = (0..NAMED)
            .map(|_| "&".repeat(300) + " (a∗∗∗@x․io)")
            .collect();
        let text = announcement(&signups);
        assert!(slack::sent_chars(&text) <= 40_000, "{}", text.len());
        assert!(text.contains(" more"), "some are counted, not named");
    }
}
