//! Email: templates rendered with minijinja, delivered over SMTP or, in
//! development, written to a mailbox folder you can open in a browser.

use std::path::PathBuf;

use anyhow::Context as _;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::Environment;
use platform::config::MailSettings;
use secrecy::ExposeSecret;
use serde::Serialize;

use platform::config::Provider;

use crate::budget::Budgets;
use crate::error::{Classify, JobError};

/// The email templates, compiled into the binary from `templates/email/` so
/// a deploy cannot ship without them.
pub struct Templates {
    env: Environment<'static>,
}

/// A rendered email, ready to address and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

/// Each named email's three templates (subject, text, HTML), compiled in.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(
            (
                concat!($name, ".subject.txt"),
                include_str!(concat!("../../templates/email/", $name, ".subject.txt")),
            ),
            (
                concat!($name, ".txt"),
                include_str!(concat!("../../templates/email/", $name, ".txt")),
            ),
            (
                concat!($name, ".html"),
                include_str!(concat!("../../templates/email/", $name, ".html")),
            ),
        )*]
    };
}

impl Templates {
    /// Parses every template once at start-up; a broken template stops the
    /// worker before it takes a job rather than failing each job later.
    pub fn load() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        // The page every HTML email extends.
        env.add_template(
            "layout.html",
            include_str!("../../templates/email/layout.html"),
        )
        .context("template layout.html does not parse")?;
        for (name, source) in templates![
            "welcome",
            "verify-email",
            "password-reset",
            "password-changed",
            "confirm-new-email",
            "email-changed",
            "email-change-requested",
            "follow-up",
        ] {
            env.add_template(name, source)
                .with_context(|| format!("template {name} does not parse"))?;
        }
        Ok(Self { env })
    }

    /// Renders `<name>.subject.txt`, `<name>.txt` and `<name>.html` (the
    /// last one HTML-escaped by its extension) with `context`.
    pub fn render(
        &self,
        name: &str,
        context: impl Serialize,
    ) -> Result<Rendered, minijinja::Error> {
        let context = minijinja::Value::from_serialize(context);
        let render = |suffix: &str| {
            self.env
                .get_template(&format!("{name}{suffix}"))?
                .render(&context)
        };
        Ok(Rendered {
            subject: render(".subject.txt")?.trim().to_owned(),
            text: render(".txt")?,
            html: render(".html")?,
        })
    }
}

/// `address`, with a display `name` if it has one: a user's address from
/// our rows. One that does not parse will not on a retry either: permanent.
pub fn recipient(name: Option<String>, address: &str) -> Result<Mailbox, JobError> {
    let address = address
        .parse()
        .permanent("the user's email address is not deliverable")?;
    Ok(Mailbox::new(name, address))
}

/// Where emails go.
pub enum Mailer {
    /// A real SMTP server (`SMTP_URL`).
    Smtp {
        /// Pooled transport; reconnects as needed.
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The `From` of every email.
        from: Mailbox,
        /// The relay's rate budget (`MAIL_RATE_LIMIT`), shared by every
        /// email queue and worker.
        budget: Budgets,
    },
    /// Development: `<dir>/<key>.eml` plus `<key>.html` to open in a browser.
    Mailbox {
        /// The folder (`MAILBOX_DIR`).
        dir: PathBuf,
        /// The `From` of every email.
        from: Mailbox,
    },
}

impl Mailer {
    /// SMTP when `SMTP_URL` is set, the dev mailbox otherwise; `budget`
    /// paces what goes to the relay.
    pub fn from_settings(settings: &MailSettings, budget: Budgets) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .with_context(|| format!("MAIL_FROM={:?} is not a mailbox", settings.from))?;
        Ok(match &settings.smtp_url {
            Some(url) => Self::Smtp {
                transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("SMTP_URL is not a valid smtp:// or smtps:// URL")?
                    .build(),
                from,
                budget,
            },
            None => Self::Mailbox {
                dir: settings.mailbox_dir.clone(),
                from,
            },
        })
    }

    /// A short name for logs and job results.
    pub fn transport_name(&self) -> &'static str {
        match self {
            Self::Smtp { .. } => "smtp",
            Self::Mailbox { .. } => "mailbox",
        }
    }

    /// Sends `email` to `to`. `key` names the dev mailbox files, so a retried
    /// job overwrites its own file instead of adding a second one.
    pub async fn send(&self, to: Mailbox, email: &Rendered, key: &str) -> Result<(), JobError> {
        self.deliver(to, email, key, None).await
    }

    /// Sends product mail (anything a user may opt out of): as [`send`],
    /// with `List-Unsubscribe` naming `unsubscribe_url` and
    /// `List-Unsubscribe-Post` (RFC 8058), so mail clients offer a one-click
    /// unsubscribe that POSTs to it.
    ///
    /// [`send`]: Mailer::send
    pub async fn send_product(
        &self,
        to: Mailbox,
        email: &Rendered,
        key: &str,
        unsubscribe_url: &str,
    ) -> Result<(), JobError> {
        self.deliver(to, email, key, Some(unsubscribe_url)).await
    }

    async fn deliver(
        &self,
        to: Mailbox,
        email: &Rendered,
        key: &str,
        unsubscribe_url: Option<&str>,
    ) -> Result<(), JobError> {
        let (Self::Smtp { from, .. } | Self::Mailbox { from, .. }) = self;
        let mut builder = Message::builder().from(from.clone()).to(to);
        if let Some(url) = unsubscribe_url {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let message = builder
            .subject(&email.subject)
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .permanent("could not build the email")?;
        match self {
            Self::Smtp {
                transport, budget, ..
            } => {
                budget.take(Provider::Mail).await?;
                match transport.send(message).await {
                    Ok(_) => Ok(()),
                    // The server refused our credentials (530, 534, 535): a
                    // rotated password or a broken config, not this email's fault.
                    Err(error)
                        if error
                            .status()
                            .map(u16::from)
                            .is_some_and(|code| matches!(code, 530 | 534 | 535)) =>
                    {
                        Err(JobError::Misconfigured(
                            anyhow::Error::new(error)
                                .context("the SMTP server refused our credentials"),
                        ))
                    }
                    // A 5xx reply (no such mailbox, rejected sender) will not
                    // change on retry; everything else (network, 4xx) may.
                    Err(error) if error.is_permanent() => {
                        Err(error).permanent("the SMTP server rejected the email")
                    }
                    Err(error) => {
                        Err(error).transient("could not hand the email to the SMTP server")
                    }
                }
            }
            Self::Mailbox { dir, .. } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .transient("could not create the mailbox folder")?;
                tokio::fs::write(dir.join(format!("{key}.eml")), message.formatted())
                    .await
                    .transient("could not write to the mailbox folder")?;
                tokio::fs::write(dir.join(format!("{key}.html")), &email.html)
                    .await
                    .transient("could not write to the mailbox folder")?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_welcome_email_greets_by_name_and_escapes_html() {
        let templates = Templates::load().expect("templates parse");
        let email = templates
            .render(
                "welcome",
                serde_json::json!({ "name": "<Ada>", "dashboard_url": "https://x.test/" }),
            )
            .expect("renders");
        assert_eq!(email.subject, "Welcome to Acme, <Ada>!");
        assert!(email.text.contains("Hi <Ada>,"));
        assert!(email.text.contains("https://x.test/"));
        assert!(email.html.contains("Hi &lt;Ada&gt;"));
        assert!(!email.html.contains("<Ada>"));
    }
}
