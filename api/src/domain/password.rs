use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A password that meets our policy. Never printed, never logged.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// NIST SP 800-63B: at least 8 characters.
    pub const MIN_CHARS: usize = 8;
    /// Bounded so a client cannot make us hash megabytes.
    pub const MAX_CHARS: usize = 128;

    /// Validates `raw` (not trimmed: spaces are legitimate password characters).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars == 0 {
            return Err("is required".into());
        }
        if chars < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if chars > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if raw.trim().is_empty() {
            return Err("must not be only spaces".into());
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// The password itself, for hashing or verifying only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn length_bounds_are_enforced_in_characters_not_bytes() {
        assert!(Password::parse("sevench").is_err());
        assert!(Password::parse("eightchr").is_ok());
        assert!(Password::parse(&"ü".repeat(128)).is_ok());
        assert!(Password::parse(&"a".repeat(129)).is_err());
        assert!(Password::parse("        ").is_err());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let password = Password::parse("correct horse").unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
    }
}
