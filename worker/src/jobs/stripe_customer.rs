//! `stripe-customer`: creates the user's Stripe customer and stores its id.
//!
//! Exactly once as far as Stripe can tell: every attempt sends the job id as
//! `Idempotency-Key`, so a retry after a lost response returns the customer
//! the first attempt created; and a user who already has a customer id is
//! left alone.

use anyhow::anyhow;
use catalogue::StripeCustomer;
use platform::config::Provider;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use store::users;

use super::{JobMeta, Perform};
use crate::budget;
use crate::context::JobContext;
use crate::error::{Classify, JobError};

#[derive(Deserialize)]
struct Customer {
    id: String,
}

#[derive(Deserialize)]
struct StripeError {
    error: StripeErrorBody,
}

#[derive(Deserialize)]
struct StripeErrorBody {
    message: Option<String>,
}

impl Perform for StripeCustomer {
    const SERVICE: &'static str = "Billing";

    async fn perform(self, ctx: &JobContext, job: &JobMeta) -> Result<Value, JobError> {
        let Some(secret_key) = &ctx.providers.stripe_secret_key else {
            return Ok(json!({ "skipped": "STRIPE_SECRET_KEY is not set" }));
        };
        let Some(user) = sqlx::query!(
            "select email, name, stripe_customer_id from users where user_id = $1 and deleting_since is null",
            self.user_id,
        )
        .fetch_optional(&ctx.pool)
        .await?
        else {
            return Err(JobError::user_gone(self.user_id));
        };
        if let Some(customer_id) = user.stripe_customer_id {
            return Ok(json!({ "customer_id": customer_id, "created": false }));
        }

        ctx.budgets.take(Provider::Stripe).await?;
        let response = ctx
            .http
            .post(format!("{}/v1/customers", ctx.providers.stripe_api_base))
            .bearer_auth(secret_key.expose_secret())
            .header("Idempotency-Key", &job.id)
            .form(&[
                ("email", user.email.as_str()),
                ("name", user.name.as_str()),
                ("metadata[user_id]", &self.user_id.to_string()),
            ])
            .send()
            .await
            .transient("could not reach Stripe")?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = budget::retry_after(response.headers());
            let message = response
                .json::<StripeError>()
                .await
                .ok()
                .and_then(|body| body.error.message)
                .unwrap_or_else(|| "no error message".to_owned());
            let error = anyhow!("Stripe answered {status}: {message}");
            // A 429 holds every Stripe caller back, without spending an attempt.
            return Err(ctx
                .budgets
                .refused(Provider::Stripe, status, retry_after, error)
                .await);
        }
        let customer: Customer = response
            .json()
            .await
            .transient("Stripe's answer was not a customer")?;

        users::set_stripe_customer(&ctx.pool, self.user_id, &customer.id).await?;
        Ok(json!({ "customer_id": customer.id, "created": true }))
    }
}
