use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{EmailAddress, Password, UserName};

/// The signup body as a client sent it. Fields are untyped JSON so a missing
/// or mistyped field is reported like any other invalid one, by name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignupForm {
    /// Email address; must be unique in any letter case.
    #[schema(value_type = String, required = true, example = "ada@example.com")]
    pub email: Option<Value>,
    /// Password: 8 to 128 characters.
    #[schema(value_type = String, required = true, format = Password)]
    pub password: Option<Value>,
    /// Display name, 1 to 100 visible characters.
    #[schema(value_type = String, required = true, example = "Ada Lovelace")]
    pub name: Option<Value>,
}

/// Problems per field, reported to the client under `error.fields`.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// A signup that passed validation.
#[derive(Debug)]
pub struct NewUser {
    /// Where the welcome email goes; unique regardless of letter case.
    pub email: EmailAddress,
    /// What we call the user.
    pub name: UserName,
    /// The password, to be hashed before it goes anywhere.
    pub password: Password,
}

impl TryFrom<SignupForm> for NewUser {
    type Error = FieldErrors;

    /// Validates every field so the client learns all problems in one round trip.
    fn try_from(form: SignupForm) -> Result<Self, Self::Error> {
        let mut errors = FieldErrors::new();
        let email = check(&mut errors, "email", form.email, EmailAddress::parse);
        let name = check(&mut errors, "name", form.name, UserName::parse);
        let password = check(&mut errors, "password", form.password, Password::parse);
        match (email, name, password) {
            (Some(email), Some(name), Some(password)) if errors.is_empty() => Ok(Self {
                email,
                name,
                password,
            }),
            _ => Err(errors),
        }
    }
}

fn check<T>(
    errors: &mut FieldErrors,
    field: &'static str,
    raw: Option<Value>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let result = match raw {
        None | Some(Value::Null) => Err("is required".to_owned()),
        Some(Value::String(text)) => parse(&text),
        Some(_) => Err("must be a string".to_owned()),
    };
    result.map_err(|problem| errors.insert(field, problem)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(email: Option<&str>, password: Option<&str>, name: Option<&str>) -> SignupForm {
        SignupForm {
            email: email.map(Value::from),
            password: password.map(Value::from),
            name: name.map(Value::from),
        }
    }

    #[test]
    fn a_valid_form_becomes_a_new_user() {
        let user = NewUser::try_from(form(Some("a@b.io"), Some("hunter2hunter2"), Some("Ada")))
            .expect("valid");
        assert_eq!(user.email.as_str(), "a@b.io");
        assert_eq!(user.name.as_str(), "Ada");
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let errors = NewUser::try_from(form(None, Some("short"), Some(" "))).unwrap_err();
        assert_eq!(errors["email"], "is required");
        assert!(errors["password"].contains("at least 8"));
        assert_eq!(errors["name"], "is required");
    }

    #[test]
    fn a_field_of_the_wrong_json_type_is_reported_by_name() {
        let mut form = form(Some("a@b.io"), Some("hunter2hunter2"), Some("Ada"));
        form.email = Some(Value::from(42));
        let errors = NewUser::try_from(form).unwrap_err();
        assert_eq!(errors["email"], "must be a string");
        assert_eq!(errors.len(), 1);
    }
}
