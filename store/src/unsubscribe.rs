//! Unsubscribe links for product mail: a user's id signed with
//! `UNSUBSCRIBE_SECRET` (HMAC-SHA256), so the link needs no login and no
//! row, keeps working for as long as the email sits in an inbox, and names
//! exactly one user: changing the id breaks the signature, and without the
//! secret no one can sign another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

/// What the signature covers besides the id: a token for another purpose,
/// signed with the same secret, is not an unsubscribe token.
const PURPOSE: &[u8] = b"unsubscribe-product-email:v1:";

/// The key that signs and checks unsubscribe tokens.
#[derive(Clone)]
pub struct UnsubscribeKey(Hmac<Sha256>);

impl UnsubscribeKey {
    /// The key for `secret` (`UNSUBSCRIBE_SECRET`).
    pub fn new(secret: &SecretString) -> Self {
        Self(
            Hmac::new_from_slice(secret.expose_secret().as_bytes())
                .expect("HMAC takes keys of any length"),
        )
    }

    /// The token of `user_id`'s links: `<id>.<signature>`, URL-safe.
    pub fn token(&self, user_id: Uuid) -> String {
        let signature = self.mac(user_id).finalize().into_bytes();
        format!("{}.{}", user_id.simple(), URL_SAFE_NO_PAD.encode(signature))
    }

    /// The user `token` was signed for, if it was signed with this key.
    /// The signature is compared in constant time.
    pub fn verify(&self, token: &str) -> Option<Uuid> {
        let (id, signature) = token.trim().split_once('.')?;
        let user_id = Uuid::try_parse(id).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(user_id)
            .verify_slice(&signature)
            .ok()
            .map(|()| user_id)
    }

    fn mac(&self, user_id: Uuid) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(PURPOSE);
        mac.update(user_id.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(secret: &str) -> UnsubscribeKey {
        UnsubscribeKey::new(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn a_token_names_the_user_it_was_signed_for() {
        let user = Uuid::now_v7();
        let key = key("a secret of at least thirty-two characters");
        assert_eq!(key.verify(&key.token(user)), Some(user));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let user = Uuid::now_v7();
        let ours = key("a secret of at least thirty-two characters");
        let theirs = key("another secret of thirty-two characters");
        assert_eq!(ours.verify(&theirs.token(user)), None);
    }

    proptest! {
        #[test]
        fn a_signature_moved_to_another_user_is_refused(a: u128, b: u128) {
            prop_assume!(a != b);
            let key = key("a secret of at least thirty-two characters");
            let token = key.token(Uuid::from_u128(a));
            let (_, signature) = token.split_once('.').unwrap();
            let forged = format!("{}.{signature}", Uuid::from_u128(b).simple());
            prop_assert_eq!(key.verify(&forged), None);
        }

        #[test]
        fn garbage_is_never_a_token(garbage in ".{0,120}") {
            let key = key("a secret of at least thirty-two characters");
            prop_assert_eq!(key.verify(&garbage), None);
        }
    }
}
