//! Each provider's rate budget, counted in Redis and so shared by every
//! queue and every worker that calls the provider: the calls granted in
//! the last window, and how long the provider asked us to wait (its 429's
//! `Retry-After`). The worker takes from it before each call; the alerts,
//! the dashboard and `/metrics` read it.

use std::sync::LazyLock;
use std::time::Duration;

use catalogue::RateLimit;
use platform::config::Provider;

use crate::{JobQueues, QueueError};

/// Grants, holds and reads atomically, in one round trip (see the script).
static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("budget.lua")));

/// What asking for one call of a provider's budget answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The call may go now; it is counted.
    Granted,
    /// The window's calls are spent: one more may go after this long.
    Spent(Duration),
    /// The provider asked us to wait (a 429): for this much longer.
    Held(Duration),
}

/// A provider's budget and its use now, as operators see it.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BudgetUse {
    /// `stripe`, `slack` or `mail`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub provider: &'static str,
    /// Calls allowed per window, every queue and worker together.
    pub limit: u64,
    /// The window, in seconds.
    pub per_seconds: f64,
    /// Calls made in the last window.
    pub used: u64,
    /// How much longer the provider's last 429 holds every caller back; 0
    /// when it does not.
    pub held_for_seconds: f64,
}

impl BudgetUse {
    /// Sets the `provider_budget*` gauges from this reading.
    pub fn publish(&self) {
        let provider = self.provider;
        metrics::gauge!("provider_budget_limit", "provider" => provider).set(self.limit as f64);
        metrics::gauge!("provider_budget_window_seconds", "provider" => provider)
            .set(self.per_seconds);
        metrics::gauge!("provider_budget_used", "provider" => provider).set(self.used as f64);
        metrics::gauge!("provider_held_seconds", "provider" => provider).set(self.held_for_seconds);
    }
}

impl JobQueues {
    /// `<prefix>:{provider:<name>}`: one key per provider, whose braces
    /// give it its own hash slot on a cluster.
    fn budget_key(&self, provider: Provider) -> String {
        format!("{}:{{provider:{provider}}}", self.prefix())
    }

    async fn budget_script(
        &self,
        provider: Provider,
        budget: RateLimit,
        operation: &str,
        last: &str,
    ) -> Result<(u8, u64, u64), QueueError> {
        let key = self.budget_key(provider);
        let mut invocation = SCRIPT.key(&key);
        invocation
            .arg(operation)
            .arg(budget.max)
            .arg(platform::millis(budget.per).max(1))
            .arg(last);
        self.bounded(async {
            let mut connection = self.connection().await?.connection();
            let answer = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(bullmq::Error::from)?;
            Ok(answer)
        })
        .await
    }

    /// Takes one call of `provider`'s `budget`, for a call about to be
    /// made: granted and counted, or how long to wait.
    pub async fn take_budget(
        &self,
        provider: Provider,
        budget: RateLimit,
    ) -> Result<Taken, QueueError> {
        let token = uuid::Uuid::now_v7().to_string();
        let (verdict, wait, _) = self.budget_script(provider, budget, "take", &token).await?;
        let wait = Duration::from_millis(wait);
        Ok(match verdict {
            0 => Taken::Granted,
            1 => Taken::Spent(wait),
            _ => Taken::Held(wait),
        })
    }

    /// Holds every caller of `provider` back for `wait` (its 429's
    /// `Retry-After`), unless a longer hold is already on.
    pub async fn hold_provider(
        &self,
        provider: Provider,
        budget: RateLimit,
        wait: Duration,
    ) -> Result<(), QueueError> {
        let ms = platform::millis(wait).max(1).to_string();
        self.budget_script(provider, budget, "hold", &ms).await?;
        Ok(())
    }

    /// `provider`'s budget and its use now.
    pub async fn budget_use(
        &self,
        provider: Provider,
        budget: RateLimit,
    ) -> Result<BudgetUse, QueueError> {
        let (_, held, used) = self.budget_script(provider, budget, "read", "").await?;
        Ok(BudgetUse {
            provider: provider.as_str(),
            limit: budget.max,
            per_seconds: budget.per.as_secs_f64(),
            used,
            held_for_seconds: Duration::from_millis(held).as_secs_f64(),
        })
    }
}
