//! Outgoing email.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::variables::{DAY, Folder, LongSecret, Secret, Secs, Text, variables};

/// Outgoing email.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// SMTP server; `None` writes emails to [`MailSettings::mailbox_dir`]
    /// instead (`SMTP_URL`).
    pub smtp_url: Option<SecretString>,
    /// Sender of every email (`MAIL_FROM`).
    pub from: String,
    /// Development mailbox used when no SMTP server is configured (`MAILBOX_DIR`).
    pub mailbox_dir: PathBuf,
    /// How long after an account is verified its follow-up email is due
    /// (`FOLLOW_UP_DELAY_SECS`).
    pub follow_up_delay: Duration,
    /// Signs the unsubscribe links of product mail, 32 characters at least;
    /// `None` sends no product mail (`UNSUBSCRIBE_SECRET`).
    pub unsubscribe_secret: Option<SecretString>,
}

variables! {
    MailSettings {
        smtp_url: Secret("SMTP_URL"),
        from: Text("MAIL_FROM", "Acme <hello@acme.test>"),
        mailbox_dir: Folder("MAILBOX_DIR", ".dev/mailbox"),
        follow_up_delay: Secs("FOLLOW_UP_DELAY_SECS", DAY.as_secs()),
        unsubscribe_secret: LongSecret("UNSUBSCRIBE_SECRET"),
    }
}
