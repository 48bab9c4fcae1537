//! Telling the team: a Slack incoming webhook and/or email. Both are sent
//! from here, not through the queues, because the queues may be what is
//! broken. Slack gets plain text (`platform::slack::body`): an alert is our
//! sentence, and a provider's answer quoted in it is shown, not rendered.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::owners::incidents::Incident;
use anyhow::Context as _;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use platform::config::Settings;
use secrecy::{ExposeSecret as _, SecretString};

use super::conditions::human;

/// How long one message may take to be accepted.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What the team reads about one incident's start or end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// One line: the email's subject.
    pub title: String,
    /// The whole message, the dashboard link last.
    pub text: String,
}

impl Alert {
    /// The message that `incident` started.
    pub fn opened(incident: &Incident, dashboard: &str) -> Self {
        let title = format!("Incident: {}", incident.summary);
        let text = format!(":rotating_light: {title}\nDashboard: {dashboard}");
        Self { title, text }
    }

    /// The message that `incident` ended.
    pub fn closed(incident: &Incident, dashboard: &str) -> Self {
        let lasted = incident
            .closed_at
            .and_then(|closed| (closed - incident.opened_at).to_std().ok())
            .map_or_else(String::new, |lasted| format!(" after {}", human(lasted)));
        let title = format!("Resolved{lasted}: {}", incident.summary);
        let text = format!(":white_check_mark: {title}\nDashboard: {dashboard}");
        Self { title, text }
    }
}

/// Where alerts go; neither set, the incidents are only recorded and shown.
pub struct Notifier {
    slack: Option<(reqwest::Client, SecretString)>,
    email: Option<Email>,
}

struct Email {
    to: Vec<Mailbox>,
    from: Mailbox,
    transport: Transport,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Development: `<dir>/alert-<key>.eml`.
    Mailbox(PathBuf),
}

impl Notifier {
    /// The channels `settings` name. Fails at start on an address or URL
    /// that cannot work, rather than at the first incident.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let alerts = &settings.alerts;
        let slack = match &alerts.slack_webhook_url {
            Some(url) => {
                reqwest::Url::parse(url.expose_secret())
                    .context("ALERT_SLACK_WEBHOOK_URL is not a URL")?;
                let client = platform::http::builder()?.timeout(SEND_TIMEOUT).build()?;
                Some((client, url.clone()))
            }
            None => None,
        };
        let email = if alerts.email_to.is_empty() {
            None
        } else {
            let to = alerts
                .email_to
                .iter()
                .map(|address| {
                    address
                        .parse()
                        .with_context(|| format!("ALERT_EMAIL_TO: {address:?} is not an address"))
                })
                .collect::<anyhow::Result<_>>()?;
            let mail = &settings.mail;
            let from = mail
                .from
                .parse()
                .with_context(|| format!("MAIL_FROM={:?} is not a mailbox", mail.from))?;
            let transport = match &mail.smtp_url {
                Some(url) => Transport::Smtp(
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                        .context("SMTP_URL is not a valid smtp:// or smtps:// URL")?
                        .timeout(Some(SEND_TIMEOUT))
                        .build(),
                ),
                None => Transport::Mailbox(mail.mailbox_dir.clone()),
            };
            Some(Email {
                to,
                from,
                transport,
            })
        };
        Ok(Self { slack, email })
    }

    /// Whether anyone is told at all.
    pub fn is_on(&self) -> bool {
        self.slack.is_some() || self.email.is_some()
    }

    /// The folder alert emails are written to when `ALERT_EMAIL_TO` is set
    /// without `SMTP_URL`: files in the development mailbox, which nobody
    /// reads in production.
    pub fn emails_to_files(&self) -> Option<&Path> {
        match &self.email.as_ref()?.transport {
            Transport::Mailbox(dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    /// Sends `message` on every channel; `key` names a development mailbox
    /// file. Fails if any channel did not take it (it is then owed, and
    /// sent again on every channel: a repeat beats a silence).
    pub async fn send(&self, message: &Alert, key: &str) -> anyhow::Result<()> {
        if let Some((client, url)) = &self.slack {
            client
                .post(url.expose_secret())
                .json(&platform::slack::body(&message.text))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                // The webhook URL is the secret: reqwest's errors name it.
                .map_err(reqwest::Error::without_url)
                .context("Slack did not take the alert")?;
        }
        if let Some(email) = &self.email {
            email.send(message, key).await?;
        }
        Ok(())
    }
}

impl Email {
    async fn send(&self, message: &Alert, key: &str) -> anyhow::Result<()> {
        let mut builder = Message::builder().from(self.from.clone());
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let email = builder
            .subject(format!("[alert] {}", message.title))
            .body(message.text.clone())
            .context("could not build the alert email")?;
        match &self.transport {
            Transport::Smtp(transport) => {
                transport
                    .send(email)
                    .await
                    .context("the SMTP server did not take the alert")?;
            }
            Transport::Mailbox(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                tokio::fs::write(dir.join(format!("alert-{key}.eml")), email.formatted())
                    .await
                    .context("could not write the alert to the mailbox folder")?;
            }
        }
        Ok(())
    }
}
