//! `Redactor`: masks secret values, and their URL-encoded forms, as `***` in any text planrun writes.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The mask that replaces a secret.
pub const MASK: &str = "***";

/// Characters left as they are by `encodeURIComponent`-style encoders (RFC 3986 unreserved);
/// every other byte is percent-encoded. Together with the fully encoded form this covers the
/// ways a secret usually ends up in a URL (`https://user:pa%24%24@host`).
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Replaces every known secret value in a text by [`MASK`].
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// The strings to mask, longest first so that a secret containing another is masked whole.
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for these secret values. Empty values are ignored: masking "" would mask
    /// between every character.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Self {
        let mut needles: Vec<String> = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.is_empty() {
                continue;
            }
            let forms = [
                secret.to_owned(),
                utf8_percent_encode(secret, URL_COMPONENT).to_string(),
                utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string(),
                // Form encoding writes spaces as `+`.
                utf8_percent_encode(secret, URL_COMPONENT)
                    .to_string()
                    .replace("%20", "+"),
            ];
            for form in forms {
                // Lower-case hex digits are just as valid in percent-encoding.
                let lower = lowercase_hex(&form);
                for candidate in [form, lower] {
                    if !needles.contains(&candidate) {
                        needles.push(candidate);
                    }
                }
            }
        }
        needles.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
        Redactor { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The text with every secret masked; borrowed when there was nothing to mask.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), MASK));
            }
        }
        out
    }

    /// Masks in place, for owned strings.
    pub fn redact_owned(&self, text: String) -> String {
        match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(masked) => masked,
        }
    }
}

/// `%2F` becomes `%2f`; other characters are kept.
fn lowercase_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut chars = encoded.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            for hex in chars.by_ref().take(2) {
                out.push(hex.to_ascii_lowercase());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_plain_and_url_encoded_forms() {
        let redactor = Redactor::new(&["p@ss word/1"]);
        assert_eq!(redactor.redact("pw=p@ss word/1;"), "pw=***;");
        assert_eq!(
            redactor.redact("https://u:p%40ss%20word%2F1@h"),
            "https://u:***@h"
        );
        assert_eq!(redactor.redact("a=p%40ss+word%2f1"), "a=***");
        assert_eq!(redactor.redact("nothing here"), "nothing here");
    }

    #[test]
    fn longer_secrets_are_masked_whole() {
        let redactor = Redactor::new(&["abc", "abcdef", ""]);
        assert_eq!(redactor.redact("xabcdefx abc"), "x***x ***");
        assert!(Redactor::new::<&str>(&[""]).is_empty());
    }
}
