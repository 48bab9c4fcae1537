use std::fmt;

/// An email address as typed by the user, trimmed and plausibly deliverable.
///
/// Deliberately not RFC 5322 complete: the only proof of an address is a
/// delivered email. This rejects what is certainly wrong and keeps the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Longest address SMTP can carry (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Validates `raw`, returning the problem as a sentence for the client.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim();
        if email.is_empty() {
            return Err("is required".into());
        }
        if email.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("must contain an @".into());
        };
        let plausible = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && email
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[]\\,;:\"".contains(c));
        if plausible {
            Ok(Self(email.to_owned()))
        } else {
            Err("is not a valid email address".into())
        }
    }

    /// The address, as the user typed it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::EmailAddress;

    #[test]
    fn plausible_addresses_are_accepted_and_trimmed() {
        for ok in [
            "ada@example.com",
            "  a.b+tag@sub.example.co.uk ",
            "Ümit@exämple.de",
        ] {
            let email = EmailAddress::parse(ok).expect(ok);
            assert_eq!(email.as_str(), ok.trim());
        }
    }

    #[test]
    fn impossible_addresses_are_rejected_with_a_reason() {
        for bad in [
            "",
            "   ",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@@example.com",
            "a da@example.com",
            "ada@example..com",
            "<ada@example.com>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse(&long).unwrap_err().contains("at most"));
    }
}
