//! Posts to Slack incoming webhooks (the team's signup notices, alerts) as
//! plain text, so a message says what we wrote and nothing a user typed
//! turns into a link, a mention or formatting in the team's channel.
//!
//! Slack reads a message as markup unless told otherwise: `<…>` makes
//! links and mentions (`<!channel>`, `<https://evil|acme.com>`), `*`, `_`,
//! `~` and `` ` `` make formatting, and its clients turn a bare URL, a domain
//! or an address into a link (and may preview it) even in plain text. So:
//!
//! - [`body`] turns markup off (`"mrkdwn": false`) and previews off
//!   (`unfurl_links`, `unfurl_media`), never asks for `link_names`, and
//!   escapes `&`, `<` and `>`, the three characters Slack reads as control
//!   characters in any text;
//! - text someone else typed (a user's name, an address) goes through
//!   [`inert`] first, because Slack has no escape for the rest: its
//!   formatting characters, and the `:` and `.` that make a link, become
//!   look-alikes no renderer (the channel, a notification, a mobile preview)
//!   reads as anything but text.

use serde_json::{Value, json};

/// The JSON body that posts `text` as plain text: escaped, markup and
/// link previews off. `text` is ours; what users typed in it went through
/// [`inert`].
pub fn body(text: &str) -> Value {
    json!({
        "text": escape(text),
        "mrkdwn": false,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

/// `text` with every character Slack could read as formatting or as part
/// of a link replaced by a look-alike that it reads as a letter: `*` `_` `~`
/// `` ` `` (bold, italic, strike, code), `:` (a scheme, `https:`, `mailto:`,
/// or an emoji code) and `.` (a domain, `evil.example`). The team still
/// reads what was typed; nothing of it can be clicked or styled.
pub fn inert(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '*' => '\u{2217}', // ∗ asterisk operator
            '_' => '\u{02CD}', // ˍ modifier letter low macron
            '~' => '\u{223C}', // ∼ tilde operator
            '`' => '\u{02CB}', // ˋ modifier letter grave accent
            ':' => '\u{2236}', // ∶ ratio
            '.' => '\u{2024}', // ․ one dot leader
            other => other,
        })
        .collect()
}

/// How many characters `text` takes in the body [`body`] makes, escaped:
/// what counts against Slack's 40,000 characters a message.
pub fn sent_chars(text: &str) -> usize {
    escape(text).chars().count()
}

/// Slack's three control characters, escaped as its docs ask.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_keeps_no_character_slack_reads_as_markup() {
        let typed = "*bold* _it_ ~no~ `code` <!channel> <https://evil.example|click> a@b.io :tada:";
        let sent = body(&inert(typed));
        let text = sent["text"].as_str().expect("text");
        for markup in ['*', '_', '~', '`', '<', '>', ':', '.'] {
            assert!(!text.contains(markup), "{markup} in {text}");
        }
        assert_eq!(sent["mrkdwn"], false);
        assert_eq!(sent["unfurl_links"], false);
        assert_eq!(sent["unfurl_media"], false);
        assert_eq!(sent.get("link_names"), None);
    }

    #[test]
    fn our_own_text_is_escaped_and_otherwise_kept() {
        assert_eq!(
            body(":rotating_light: a & b <c>\nhttps://ops.example/admin")["text"],
            ":rotating_light: a &amp; b &lt;c&gt;\nhttps://ops.example/admin"
        );
    }
}
