use std::fmt;

/// A display name: what we greet the user with in emails and documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Generous, but bounded so a name fits an email subject line and a PDF.
    pub const MAX_CHARS: usize = 100;

    /// Validates `raw`, returning the problem as a sentence for the client.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("is required".into());
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        // Control characters would let a name inject headers or break layouts.
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if name.chars().any(is_invisible_or_directional) {
            return Err("must not contain invisible or text-direction characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    /// The name, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that hide text or reorder how it is shown: a name with a
/// right-to-left override reads differently in an email, a PDF and a Slack
/// channel. Zero-width joiner and non-joiner stay allowed: Persian and Indic
/// names and emoji sequences need them, and they cannot reorder or hide text.
fn is_invisible_or_directional(c: char) -> bool {
    matches!(
        c,
        // Directional marks, embeddings, overrides and isolates.
        '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        // Zero-width space, word joiner, invisible operators, BOM.
        | '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}'
        // Line and paragraph separators.
        | '\u{2028}' | '\u{2029}'
        // Interlinear annotations, which hide text between their marks.
        | '\u{FFF9}'..='\u{FFFB}'
    )
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::UserName;

    #[test]
    fn names_are_trimmed_and_may_use_any_script() {
        assert_eq!(
            UserName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert!(UserName::parse("ミク 初音").is_ok());
        assert!(UserName::parse(&"é".repeat(UserName::MAX_CHARS)).is_ok());
    }

    #[test]
    fn invisible_and_direction_changing_characters_are_rejected() {
        for name in [
            "Ada\u{202E}ecalevoL",
            "Ada\u{200B}Lovelace",
            "Ada\u{2066}x\u{2069}",
            "Ada\u{2028}Lovelace",
            "\u{FEFF}Ada",
        ] {
            assert!(
                UserName::parse(name).unwrap_err().contains("invisible"),
                "{name:?}"
            );
        }
    }

    #[test]
    fn joiners_that_real_names_need_are_accepted() {
        assert!(UserName::parse("مهسا\u{200C}ی").is_ok(), "Persian ZWNJ");
        assert!(
            UserName::parse("Ada 👩\u{200D}💻").is_ok(),
            "emoji ZWJ sequence"
        );
    }

    #[test]
    fn empty_long_and_control_character_names_are_rejected() {
        assert_eq!(UserName::parse("  ").unwrap_err(), "is required");
        assert!(
            UserName::parse(&"a".repeat(101))
                .unwrap_err()
                .contains("at most")
        );
        assert!(
            UserName::parse("Ada\r\nBcc: x@y.z")
                .unwrap_err()
                .contains("control")
        );
    }
}
