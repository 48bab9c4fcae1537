//! `account-email`: the emails an account's owner is waiting for or must
//! see: the link that proves the address (or a new one), a password reset
//! link, a notice that the password or the address changed.
//!
//! They carry nothing the account's signer typed (no name): the address
//! may not be the signer's, and an email from us must not say what a
//! stranger wants it to. A reset link's token is made here, at sending
//! time, so it is never in the job's payload, in Redis or in its record; a
//! retried job sends a new link (each expires on its own, and using one
//! spends them all). Delivery is at-least-once, as for every email.
//!
//! A link is made only while the account is still at the credentials'
//! epoch it was asked under (carried in the payload): a reset or an email
//! change asked for before the owner set a new password is not sent at
//! all. Notices are sent whatever changed since: they are about the change.

use catalogue::{AccountEmail, AccountEmailKind};
use chrono::Utc;
use serde_json::{Value, json};
use store::tokens::TokenHash;
use store::{resets, tokens, users, verifications};

use super::{JobMeta, Perform};
use crate::context::JobContext;
use crate::email::recipient;
use crate::error::{Classify, JobError};

impl Perform for AccountEmail {
    const SERVICE: &'static str = "Email delivery";

    async fn perform(self, ctx: &JobContext, job: &JobMeta) -> Result<Value, JobError> {
        let Some(account) = users::standing(&ctx.pool, self.user_id).await? else {
            return Err(JobError::user_gone(self.user_id));
        };
        // A link is made for the credentials it was asked under. A job
        // recorded before links were bound was asked under the first epoch
        // (the migration started every account there): a reset since voids
        // it too.
        let epoch = self.epoch.unwrap_or(0);
        // The account's address, unless the payload names another (an email
        // change's new address, or the old one its notice goes to).
        let mut email = self.address.unwrap_or(account.email);
        let now = || Utc::now().format("%Y-%m-%d %H:%M").to_string();
        let rendered = match self.kind {
            AccountEmailKind::VerifyEmail if account.verified => {
                return Ok(json!({ "skipped": "the address is verified already" }));
            }
            AccountEmailKind::VerifyEmail | AccountEmailKind::ConfirmNewEmail => {
                let (token, hash) = mint()?;
                let ttl = ctx.links.email_verification_ttl;
                if !verifications::issue(&ctx.pool, self.user_id, epoch, &email, &hash, ttl).await?
                {
                    return Ok(json!({ "skipped": MOVED_ON }));
                }
                let template = if self.kind == AccountEmailKind::VerifyEmail {
                    "verify-email"
                } else {
                    "confirm-new-email"
                };
                ctx.templates.render(
                    template,
                    json!({
                        "verify_url": format!("{}/verify-email#token={token}", ctx.links.public_url),
                        "valid_hours": ttl.as_secs().div_ceil(3600),
                    }),
                )
            }
            AccountEmailKind::PasswordReset => {
                let (token, hash) = mint()?;
                let ttl = ctx.links.password_reset_ttl;
                // Bound to the address the account has now: that is where it goes.
                let Some(bound) = resets::issue(&ctx.pool, self.user_id, epoch, &hash, ttl).await?
                else {
                    return Ok(json!({ "skipped": MOVED_ON }));
                };
                email = bound;
                ctx.templates.render(
                    "password-reset",
                    json!({
                        // In the fragment: browsers send it to no server,
                        // not even ours, and no Referer carries it.
                        "reset_url": format!("{}/reset-password#token={token}", ctx.links.public_url),
                        "valid_minutes": ttl.as_secs().div_ceil(60),
                    }),
                )
            }
            AccountEmailKind::EmailChanged => ctx
                .templates
                .render("email-changed", json!({ "changed_at": now() })),
            AccountEmailKind::EmailChangeRequested => ctx.templates.render(
                "email-change-requested",
                json!({
                    "new_address": self.hint.as_deref().unwrap_or("another address"),
                    "asked_at": now(),
                    "forgot_url": format!("{}/forgot-password", ctx.links.public_url),
                }),
            ),
            AccountEmailKind::PasswordChanged => ctx.templates.render(
                "password-changed",
                json!({
                    "changed_at": now(),
                    "forgot_url": format!("{}/forgot-password", ctx.links.public_url),
                }),
            ),
        }
        .permanent("could not render the account email")?;
        let to = recipient(None, &email)?;
        ctx.mailer.send(to, &rendered, &job.id).await?;
        Ok(json!({ "delivered_to": email, "transport": ctx.mailer.transport_name() }))
    }
}

/// Why a link was not sent: whoever asked for it did so under credentials
/// the account has left behind (a new password, a new address, a
/// deletion), so the link would be void.
const MOVED_ON: &str = "the account's password or address changed since it was asked for";

/// A new link token and the hash that is stored.
fn mint() -> Result<(String, TokenHash), JobError> {
    tokens::mint()
        .map_err(|e| JobError::Transient(anyhow::anyhow!("the OS random source failed: {e}")))
}
