//! Everything the processes wrote or answered, kept to be searched: every
//! answer's body, their output, the traces they exported; and every token
//! a flow was handed or used, to search for beside the configured secrets.

use reqwest::header::HeaderMap;
use serde_json::Value;

/// What was seen, and the tokens to look for in it.
#[derive(Default)]
pub struct Evidence {
    /// Where each text came from, and the text.
    texts: Vec<(String, String)>,
    /// What each token is, and the token.
    tokens: Vec<(String, String)>,
}

/// An answer, its body kept.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, where a cookie is handed out.
    pub headers: HeaderMap,
    /// The body as JSON; `Null` when it is not JSON.
    pub json: Value,
}

impl Evidence {
    /// Sends `request` (`what` names it in a finding) and keeps its body.
    /// A `token` or `device_token` it hands out is where that token is
    /// meant to be: it is remembered, to be searched for everywhere else,
    /// and left out of this body's search.
    pub async fn send(&mut self, what: &str, request: testkit::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the process answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = response.text().await.expect("the body arrives");
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        for field in ["token", "device_token"] {
            if let Some(issued) = json.get(field).and_then(Value::as_str) {
                self.token(&format!("the {field} answered to {what}"), issued);
                body = body.replace(issued, "[handed out here]");
            }
        }
        self.keep(&format!("the answer to {what}"), body);
        Answer {
            status,
            headers,
            json,
        }
    }

    /// Keeps `text` (a process's output, an export), found at `source`.
    pub fn keep(&mut self, source: &str, text: String) {
        self.texts.push((source.to_owned(), text));
    }

    /// Remembers `token` (`what` says which) to search for.
    pub fn token(&mut self, what: &str, token: &str) {
        assert!(token.len() >= 16, "{what} is too short to search for");
        self.tokens.push((what.to_owned(), token.to_owned()));
    }

    /// How many texts were kept.
    pub fn texts(&self) -> usize {
        self.texts.len()
    }

    /// Every place a secret of `secrets` (what it is, its value) or a
    /// remembered token shows, with the text around it.
    pub fn findings(&self, secrets: &[(&str, &str)]) -> Vec<String> {
        let needles = secrets
            .iter()
            .copied()
            .chain(self.tokens.iter().map(|(what, value)| (&**what, &**value)));
        let mut findings = Vec::new();
        for (what, needle) in needles {
            for (source, text) in &self.texts {
                if let Some(at) = text.find(needle) {
                    findings.push(format!(
                        "{what} in {source}: …{}…",
                        around(text, at, needle.len())
                    ));
                }
            }
        }
        findings
    }
}

/// Up to 200 characters of `text` either side of `at..at + len`.
fn around(text: &str, at: usize, len: usize) -> &str {
    let mut start = at.saturating_sub(200);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + len + 200).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    &text[start..end]
}
