//! `Redactor`: masks secret values, and their URL-encoded forms, as `***` in any text planrun writes.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::secret::Secret;

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

/// Replaces every known secret value in a text by [`MASK`]. Built once per command, with the
/// rendered plan; its own `Debug` shows only masks.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// The strings to mask, longest first so that a secret containing another is masked whole.
    needles: Vec<Secret>,
}

impl Redactor {
    /// A redactor for these secret values. Empty values are ignored: masking "" would mask
    /// between every character.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Self {
        let mut needles: Vec<Secret> = Vec::new();
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
                // Inside a JSON string a quote or backslash is escaped.
                json_escaped(secret),
            ];
            for form in forms {
                // Lower-case hex digits are just as valid in percent-encoding.
                let lower = lowercase_hex(&form);
                for candidate in [form, lower] {
                    let candidate = Secret::new(candidate);
                    if !needles.contains(&candidate) {
                        needles.push(candidate);
                    }
                }
            }
        }
        needles.sort_by_key(|needle| std::cmp::Reverse(needle.expose().len()));
        Redactor { needles }
    }

    /// A redactor for resolved secrets.
    pub fn for_secrets(secrets: &[Secret]) -> Self {
        Redactor::new(&secrets.iter().map(Secret::expose).collect::<Vec<_>>())
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The text with every secret masked; borrowed when there was nothing to mask.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            let needle = needle.expose();
            if out.contains(needle) {
                out = Cow::Owned(out.replace(needle, MASK));
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

/// Writes what `fields` writes as `Debug`, with every secret masked: the way a type that holds
/// rendered (secret-bearing) text implements `Debug`. `{:#?}` stays pretty.
pub fn debug_masked(
    f: &mut fmt::Formatter<'_>,
    redactor: &Redactor,
    fields: impl Fn(&mut fmt::Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    struct Raw<F>(F);
    impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Debug for Raw<F> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            (self.0)(f)
        }
    }
    let raw = if f.alternate() {
        format!("{:#?}", Raw(fields))
    } else {
        format!("{:?}", Raw(fields))
    };
    f.write_str(&redactor.redact(&raw))
}

/// The secret as it appears inside a JSON string, without the quotes.
fn json_escaped(secret: &str) -> String {
    let quoted = serde_json::to_string(secret).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(secret)
        .to_owned()
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
    fn masks_json_escaped_forms_and_never_shows_itself() {
        let redactor = Redactor::new(&["a\"b\\c"]);
        let json = serde_json::json!({ "error": "bad key a\"b\\c" }).to_string();
        assert_eq!(redactor.redact(&json), r#"{"error":"bad key ***"}"#);
        assert!(!format!("{redactor:?}").contains('b'));
    }

    #[test]
    fn longer_secrets_are_masked_whole() {
        let redactor = Redactor::new(&["abc", "abcdef", ""]);
        assert_eq!(redactor.redact("xabcdefx abc"), "x***x ***");
        assert!(Redactor::new::<&str>(&[""]).is_empty());
    }
}
