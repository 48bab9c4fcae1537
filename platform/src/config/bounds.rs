//! The bounds a variable's value is kept within (`Variable::at_least`,
//! `Variable::at_most`, `Variable::zero_is_off`).

use super::variables::{Env, Variable, Vars};

/// See [`Variable::at_least`].
pub(super) struct AtLeast<E, T>(pub(super) E, pub(super) T);

impl<E: Variable<T>, T: Ord + Clone> Variable<T> for AtLeast<E, T> {
    fn read(&self, env: &mut Env<'_>) -> T {
        self.0.read(env).max(self.1.clone())
    }

    fn write(&self, value: &T, vars: &mut Vars) {
        self.0.write(value, vars);
    }
}

/// See [`Variable::at_most`].
pub(super) struct AtMost<E, T>(pub(super) E, pub(super) T);

impl<E: Variable<T>, T: Ord + Clone> Variable<T> for AtMost<E, T> {
    fn read(&self, env: &mut Env<'_>) -> T {
        self.0.read(env).min(self.1.clone())
    }

    fn write(&self, value: &T, vars: &mut Vars) {
        self.0.write(value, vars);
    }
}

/// See [`Variable::zero_is_off`].
pub(super) struct ZeroIsOff<E>(pub(super) E);

impl<E: Variable<T>, T: Default + PartialEq> Variable<Option<T>> for ZeroIsOff<E> {
    fn read(&self, env: &mut Env<'_>) -> Option<T> {
        Some(self.0.read(env)).filter(|value| *value != T::default())
    }

    fn write(&self, value: &Option<T>, vars: &mut Vars) {
        match value {
            Some(value) => self.0.write(value, vars),
            None => self.0.write(&T::default(), vars),
        }
    }
}
