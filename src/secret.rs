//! `Secret`: a resolved secret value that prints as `***` through `Debug` and `Display`.

use std::fmt;

use crate::redact::MASK;

/// A secret value read from its env variable or file. Printing it in any form shows
/// [`MASK`], so a `{:?}` of a struct that holds one cannot leak it; the value itself is
/// reached only through [`Secret::expose`], which names the intent at the call site.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the few places that must use it (templates, the redactor).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_show_the_mask() {
        let secret = Secret::from("hunter2");
        assert_eq!(
            format!("{secret:?} {secret} {:?}", vec![secret.clone()]),
            "*** *** [***]"
        );
        assert_eq!(secret.expose(), "hunter2");
    }
}
