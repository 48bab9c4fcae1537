//! How a setting is read from its variable and written back to it. Each
//! field of a group names its variable once, with an encoding that does
//! both ([`variables!`]); the encodings below are every syntax a variable
//! has.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use super::bounds::{AtLeast, AtMost, ZeroIsOff};

use super::ConfigError;

/// The shortest secret accepted for a key that signs links, or a token
/// that opens the operators' endpoints: past guessing, online or offline.
const MIN_SECRET_CHARS: usize = 32;

/// The shortest of several timeouts and windows: zero would mean "never".
pub(super) const SECOND: Duration = Duration::from_secs(1);
/// The unit of the `…_DAYS` variables.
pub(super) const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Reads variables and collects what is wrong with them, so a binary
/// reports every problem at once rather than one per restart.
pub(super) struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl<'a> Env<'a> {
    pub(super) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
        }
    }

    /// `value` if every variable was fine, else all the problems.
    pub(super) fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError(self.problems))
        }
    }

    /// The variable's value; a blank one is the same as unset, so a line
    /// of `.env.example` uncommented as `NAME=` keeps the default.
    pub(super) fn get(&self, key: &str) -> Option<String> {
        (self.lookup)(key).filter(|value| !value.trim().is_empty())
    }

    pub(super) fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// The variable parsed, `default` when unset or (reported) malformed.
    pub(super) fn parsed<T>(&mut self, key: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(key) {
            None => default,
            Some(raw) => raw.trim().parse().unwrap_or_else(|error| {
                self.problem(format!("{key}={raw:?} is invalid: {error}"));
                default
            }),
        }
    }
}

/// Variables with the values that read back as some settings, in order.
pub(super) type Vars = Vec<(String, String)>;

/// How one field is read from its variable and written back: reading then
/// writing gives the variable's meaning back (an empty value is unset).
pub(super) trait Variable<T> {
    /// The field, from the environment; a problem is reported to `env` and
    /// the default taken, so reading goes on.
    fn read(&self, env: &mut Env<'_>) -> T;

    /// The variable(s) that read back as `value`.
    fn write(&self, value: &T, vars: &mut Vars);

    /// Never less than `min` (a zero timeout would mean "never").
    fn at_least(self, min: T) -> AtLeast<Self, T>
    where
        Self: Sized,
    {
        AtLeast(self, min)
    }

    /// Never more than `max` (a bound that must stay a bound).
    fn at_most(self, max: T) -> AtMost<Self, T>
    where
        Self: Sized,
    {
        AtMost(self, max)
    }

    /// `0` turns the feature off: `None`.
    fn zero_is_off(self) -> ZeroIsOff<Self>
    where
        Self: Sized,
    {
        ZeroIsOff(self)
    }
}

/// A group of settings read from and written to variables as a whole.
/// Implemented with [`variables!`].
pub(super) trait Group: Sized {
    /// The group, from the environment.
    fn read(env: &mut Env<'_>) -> Self;
    /// The variables that read back as this group.
    fn write(&self, vars: &mut Vars);
}

/// Declares a group's variables: one line per field, `field: encoding`,
/// which both reads the field and writes it back. Every field is listed
/// (the group is built from the list). Fields are read in order and bound
/// by name, so a default may use a field above it:
/// `max_queue: Parsed("ARGON2_MAX_QUEUE", 16 * threads)`.
///
/// A group whose variables depend on a value (a queue's name and defaults)
/// is declared as that value's [`Variable`]:
/// `variables! { |queue: QueueVariables| QueueSettings { … } }`.
macro_rules! variables {
    ($group:ident { $($field:ident: $variable:expr),* $(,)? }) => {
        impl $crate::config::variables::Group for $group {
            fn read(env: &mut $crate::config::variables::Env<'_>) -> Self {
                $(let $field = $crate::config::variables::Variable::read(&$variable, env);)*
                Self { $($field),* }
            }

            fn write(&self, vars: &mut $crate::config::variables::Vars) {
                $(let $field = ::std::clone::Clone::clone(&self.$field);)*
                $($crate::config::variables::Variable::write(&$variable, &$field, vars);)*
            }
        }
    };
    (|$on:ident: $context:ty| $group:ident { $($field:ident: $variable:expr),* $(,)? }) => {
        impl $crate::config::variables::Variable<$group> for $context {
            fn read(&self, env: &mut $crate::config::variables::Env<'_>) -> $group {
                let $on = self;
                $(let $field = $crate::config::variables::Variable::read(&$variable, env);)*
                $group { $($field),* }
            }

            fn write(&self, value: &$group, vars: &mut $crate::config::variables::Vars) {
                let $on = self;
                $(let $field = ::std::clone::Clone::clone(&value.$field);)*
                $($crate::config::variables::Variable::write(&$variable, &$field, vars);)*
            }
        }
    };
}
pub(super) use variables;

/// Writes `key=value` back.
pub(super) fn push(vars: &mut Vars, key: &str, value: String) {
    vars.push((key.to_owned(), value));
}

/// A group inside a group (`server.http`), with its own variables.
pub(super) struct Nested;

impl<G: Group> Variable<G> for Nested {
    fn read(&self, env: &mut Env<'_>) -> G {
        G::read(env)
    }

    fn write(&self, value: &G, vars: &mut Vars) {
        value.write(vars);
    }
}

/// A value written as itself (numbers, `true`, `json`), with its default.
pub(super) struct Parsed<'k, T>(pub &'k str, pub T);

impl<T> Variable<T> for Parsed<'_, T>
where
    T: FromStr + Display + Clone,
    T::Err: Display,
{
    fn read(&self, env: &mut Env<'_>) -> T {
        env.parsed(self.0, self.1.clone())
    }

    fn write(&self, value: &T, vars: &mut Vars) {
        push(vars, self.0, value.to_string());
    }
}

/// A duration in whole seconds (`…_SECS`), with its default.
pub(super) struct Secs<'k>(pub &'k str, pub u64);

impl Variable<Duration> for Secs<'_> {
    fn read(&self, env: &mut Env<'_>) -> Duration {
        Duration::from_secs(env.parsed(self.0, self.1))
    }

    fn write(&self, value: &Duration, vars: &mut Vars) {
        push(vars, self.0, value.as_secs().to_string());
    }
}

/// A duration in milliseconds (`…_MS`), with its default.
pub(super) struct Millis<'k>(pub &'k str, pub Duration);

impl Variable<Duration> for Millis<'_> {
    fn read(&self, env: &mut Env<'_>) -> Duration {
        Duration::from_millis(env.parsed(self.0, crate::millis(self.1)))
    }

    fn write(&self, value: &Duration, vars: &mut Vars) {
        push(vars, self.0, crate::millis(*value).to_string());
    }
}

/// A duration in whole days (`…_DAYS`), with its default.
pub(super) struct Days<'k>(pub &'k str, pub u64);

impl Variable<Duration> for Days<'_> {
    fn read(&self, env: &mut Env<'_>) -> Duration {
        let days: u64 = env.parsed(self.0, self.1);
        Duration::from_secs(days.saturating_mul(DAY.as_secs()))
    }

    fn write(&self, value: &Duration, vars: &mut Vars) {
        push(vars, self.0, (value.as_secs() / DAY.as_secs()).to_string());
    }
}

/// Text taken as it is, with its default.
pub(super) struct Text<'k>(pub &'k str, pub &'static str);

impl Variable<String> for Text<'_> {
    fn read(&self, env: &mut Env<'_>) -> String {
        env.get(self.0).unwrap_or_else(|| self.1.to_owned())
    }

    fn write(&self, value: &String, vars: &mut Vars) {
        push(vars, self.0, value.clone());
    }
}

/// A base URL, with its default; links are made by appending `/path`, so
/// a trailing slash is dropped.
pub(super) struct BaseUrl<'k>(pub &'k str, pub &'static str);

impl Variable<String> for BaseUrl<'_> {
    fn read(&self, env: &mut Env<'_>) -> String {
        Text(self.0, self.1)
            .read(env)
            .trim_end_matches('/')
            .to_owned()
    }

    fn write(&self, value: &String, vars: &mut Vars) {
        Text(self.0, self.1).write(value, vars);
    }
}

/// A folder, with its default.
pub(super) struct Folder<'k, D>(pub &'k str, pub D);

impl<D: AsRef<Path>> Variable<PathBuf> for Folder<'_, D> {
    fn read(&self, env: &mut Env<'_>) -> PathBuf {
        env.get(self.0)
            .map_or_else(|| self.1.as_ref().to_owned(), PathBuf::from)
    }

    fn write(&self, value: &PathBuf, vars: &mut Vars) {
        push(vars, self.0, value.display().to_string());
    }
}

/// Text that may be unset.
pub(super) struct Optional<'k>(pub &'k str);

impl Variable<Option<String>> for Optional<'_> {
    fn read(&self, env: &mut Env<'_>) -> Option<String> {
        env.get(self.0)
    }

    fn write(&self, value: &Option<String>, vars: &mut Vars) {
        push(vars, self.0, value.clone().unwrap_or_default());
    }
}

/// The items of a comma-separated list, trimmed, blank ones dropped.
pub(super) fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// A comma-separated list; blank items are dropped.
pub(super) struct List<'k>(pub &'k str);

impl Variable<Vec<String>> for List<'_> {
    fn read(&self, env: &mut Env<'_>) -> Vec<String> {
        env.get(self.0)
            .map(|list| items(&list).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn write(&self, value: &Vec<String>, vars: &mut Vars) {
        push(vars, self.0, value.join(","));
    }
}

/// A secret that must be set.
pub(super) struct Required<'k>(pub &'k str);

impl Variable<SecretString> for Required<'_> {
    fn read(&self, env: &mut Env<'_>) -> SecretString {
        let value = env.get(self.0);
        if value.is_none() {
            env.problem(format!("{} is required but not set", self.0));
        }
        SecretString::from(value.unwrap_or_default())
    }

    fn write(&self, value: &SecretString, vars: &mut Vars) {
        push(vars, self.0, value.expose_secret().to_owned());
    }
}

/// A secret that may be unset. Written back exposed: the variables are
/// what a child process is started with.
pub(super) struct Secret<'k>(pub &'k str);

impl Variable<Option<SecretString>> for Secret<'_> {
    fn read(&self, env: &mut Env<'_>) -> Option<SecretString> {
        env.get(self.0).map(SecretString::from)
    }

    fn write(&self, value: &Option<SecretString>, vars: &mut Vars) {
        let value = value.as_ref().map(|secret| secret.expose_secret());
        push(vars, self.0, value.unwrap_or_default().to_owned());
    }
}

/// A secret that keys a MAC or opens the operators' endpoints: shorter
/// than [`MIN_SECRET_CHARS`] would make it guessable offline.
pub(super) struct LongSecret<'k>(pub &'k str);

impl Variable<Option<SecretString>> for LongSecret<'_> {
    fn read(&self, env: &mut Env<'_>) -> Option<SecretString> {
        let value = env.get(self.0)?;
        if value.chars().count() < MIN_SECRET_CHARS {
            env.problem(format!(
                "{} must be at least {MIN_SECRET_CHARS} characters (e.g. `openssl rand -hex 32`)",
                self.0
            ));
        }
        Some(SecretString::from(value))
    }

    fn write(&self, value: &Option<SecretString>, vars: &mut Vars) {
        Secret(self.0).write(value, vars);
    }
}
