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
        Ok(Self(name.to_owned()))
    }

    /// The name, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
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
