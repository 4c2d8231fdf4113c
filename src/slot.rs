//! A lazily filled, type-erased value that a lower layer carries on behalf
//! of an upper one, so that imports keep pointing down: a [`Vocabulary`]
//! holds the mask layer's shared mask cache, a [`Grammar`] the mask
//! layer's reach representatives, without naming their types.
//!
//! [`Vocabulary`]: crate::Vocabulary
//! [`Grammar`]: crate::grammar::Grammar

use std::any::Any;
use std::sync::OnceLock;

/// One value of one type, made on first use. Each slot is read with a
/// single type throughout (the owner of the type is the only reader).
#[derive(Default)]
pub(crate) struct Slot(OnceLock<Box<dyn Any + Send + Sync>>);

impl Slot {
    /// The value, made by `init` on first use.
    pub fn get_or_init<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> &T {
        let v = self.0.get_or_init(|| Box::new(init()));
        match v.downcast_ref::<T>() {
            Some(t) => t,
            // A slot is only ever read as the type its owner stores.
            None => unreachable!("a Slot read as two types"),
        }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "Slot(filled)" } else { "Slot(empty)" })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fills_once() {
        let s = super::Slot::default();
        assert_eq!(*s.get_or_init(|| 5u32), 5);
        assert_eq!(*s.get_or_init(|| 6u32), 5);
    }
}
