//! `Redactor`: masks secret values, each line of a multi-line one, and the forms a child
//! commonly prints them in (URL-encoded, JSON-escaped, `printf %q`), as `***` in any text
//! planrun writes; and tells a line splitter where a secret may be starting, so that a long
//! line is never cut inside one.

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

/// JavaScript's `encodeURIComponent` and jq's `@uri` also leave `!*'()` as they are.
const URL_COMPONENT_JS: &AsciiSet = &URL_COMPONENT
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Replaces every known secret value in a text by [`MASK`]. Built once per command, with the
/// rendered plan; its own `Debug` shows only masks.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// The strings to mask, longest first so that a secret containing another is masked whole.
    needles: Vec<Secret>,
    /// The secret values themselves, for [`Redactor::holds_secret`].
    secrets: Vec<Secret>,
}

/// A line of a multi-line secret shorter than this is not masked on its own.
pub const MIN_LINE_SECRET: usize = 4;

/// A line splitter may hold back at most this much of a piece for a secret that may be
/// starting at its end: secret forms longer than this can still be cut (planrun cuts lines
/// at 16 KiB, so pieces stay at least half that).
pub const MAX_HELD_BACK: usize = 8 * 1024;

impl Redactor {
    /// A redactor for these secret values. Empty values are ignored: masking "" would mask
    /// between every character.
    ///
    /// A secret holding line breaks is masked whole and, because output reaches planrun line
    /// by line, each of its lines is masked on its own too, when it is at least
    /// [`MIN_LINE_SECRET`] characters long (a shorter line, such as `}` closing a JSON key,
    /// would mask that text everywhere and identifies nothing).
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Self {
        let mut needles: Vec<Secret> = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.is_empty() {
                continue;
            }
            let mut values = vec![secret];
            if secret.contains(['\n', '\r']) {
                values.extend(
                    secret
                        .split(['\n', '\r'])
                        .filter(|line| line.chars().count() >= MIN_LINE_SECRET),
                );
            }
            for value in values {
                for form in forms(value) {
                    let candidate = Secret::new(form);
                    if !candidate.expose().is_empty() && !needles.contains(&candidate) {
                        needles.push(candidate);
                    }
                }
            }
        }
        needles.sort_by_key(|needle| std::cmp::Reverse(needle.expose().len()));
        let secrets = secrets
            .iter()
            .map(|s| s.as_ref())
            .filter(|s| !s.is_empty())
            .map(Secret::from)
            .collect();
        Redactor { needles, secrets }
    }

    /// A redactor for resolved secrets.
    pub fn for_secrets(secrets: &[Secret]) -> Self {
        Redactor::new(&secrets.iter().map(Secret::expose).collect::<Vec<_>>())
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// True when `text` holds a whole secret value as it is: for places a secret must never
    /// reach (argv, recorded paths), however the value got there.
    pub fn holds_secret(&self, text: &str) -> bool {
        self.secrets.iter().any(|s| text.contains(s.expose()))
    }

    /// Where the piece `text` may end inside the beginning of a secret: the start of its
    /// longest ending that begins some masked form, or `text.len()` when none does. A line
    /// splitter that must cut a long line cuts there and carries the rest over to the next
    /// piece, so the redactor sees every secret whole. Holds back at most [`MAX_HELD_BACK`]
    /// bytes and at most half the piece, so a piece always makes progress.
    pub fn possible_match_start(&self, text: &str) -> usize {
        let bytes = text.as_bytes();
        // Only an ending shorter than the longest needle can be the start of one.
        let longest = self.needles.first().map_or(0, |n| n.expose().len());
        let window = (text.len() / 2)
            .min(MAX_HELD_BACK)
            .min(longest.saturating_sub(1));
        let from = text.len() - window;
        for start in from..text.len() {
            let rest = &bytes[start..];
            if self
                .needles
                .iter()
                .any(|n| n.expose().len() > rest.len() && n.expose().as_bytes().starts_with(rest))
            {
                // A needle is text, so a match starts on a character boundary.
                return start;
            }
        }
        text.len()
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

/// The forms of one value that are masked: as it is, URL-encoded (component, JavaScript and
/// jq's component, fully, form),
/// JSON-escaped and as bash's `printf %q` writes it, each also with lower-case hex digits.
/// Base64 and other encodings are not recognised.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    for set in [URL_COMPONENT, URL_COMPONENT_JS, NON_ALPHANUMERIC] {
        let encoded = utf8_percent_encode(value, set).to_string();
        // Form encoding writes spaces as `+`.
        forms.push(encoded.replace("%20", "+"));
        forms.push(encoded);
    }
    forms.extend([
        // Inside a JSON string a quote or backslash is escaped.
        json_escaped(value),
        shell_q(value),
        // Inside single quotes, as bash's `${x@Q}` (`'\''`) and Python's shlex (`'"'"'`)
        // write a quote.
        value.replace('\'', "'\\''"),
        value.replace('\'', "'\"'\"'"),
    ]);
    let mut out = Vec::new();
    for form in forms {
        // Lower-case hex digits are just as valid in percent-encoding.
        let lower = lowercase_hex(&form);
        out.push(form);
        out.push(lower);
    }
    out
}

/// The value as bash's `printf %q` (and `${x@Q}`-style backslash quoting) writes it: a
/// backslash before each character the shell would read specially, `$'…'` when it holds
/// control characters.
fn shell_q(value: &str) -> String {
    if value.chars().any(char::is_control) {
        let mut out = String::from("$'");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{b}' => out.push_str("\\v"),
                '\u{c}' => out.push_str("\\f"),
                '\u{1b}' => out.push_str("\\E"),
                c if c.is_control() => out.push_str(&format!("\\{:03o}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    let mut out = String::with_capacity(value.len() * 2);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(
            c,
            ' ' | '!'
                | '"'
                | '$'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | ','
                | ';'
                | '<'
                | '>'
                | '?'
                | '['
                | '\\'
                | ']'
                | '^'
                | '`'
                | '{'
                | '|'
                | '}'
        ) || (i == 0 && matches!(c, '#' | '~'));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
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

    #[test]
    fn each_long_enough_line_of_a_multi_line_secret_is_masked() {
        let redactor = Redactor::new(&["first-line\r\nab\nthird line"]);
        assert_eq!(redactor.redact("k=first-line\r\nab\nthird line."), "k=***.");
        assert_eq!(redactor.redact("> first-line"), "> ***");
        assert_eq!(redactor.redact("third line!"), "***!");
        // Too short to identify anything on its own.
        assert_eq!(redactor.redact("ab"), "ab");
    }

    #[test]
    fn masks_what_bash_printf_q_writes() {
        let secrets = [
            "pa ss$w'o\"rd`x",
            "#lead~ing,(x)[y]{z}|&;<>?*!^\\",
            "two\nlines\twith 'quote' and \\ back",
            "plain-ASCII_ok.1/2:3@4%5+6=7",
        ];
        for secret in secrets {
            let out = std::process::Command::new("bash")
                .args(["-c", "printf '%q' \"$1\"", "_", secret])
                .output()
                .expect("bash runs");
            let printed = String::from_utf8(out.stdout).unwrap();
            assert_eq!(shell_q(secret), printed, "for {secret:?}");
            let redactor = Redactor::new(&[secret]);
            assert_eq!(redactor.redact(&format!("<{printed}>")), "<***>");
        }
    }

    #[test]
    fn a_splitter_is_told_where_a_secret_may_begin() {
        let redactor = Redactor::new(&["hunter2-secret"]);
        let text = format!("{}hunter", "x".repeat(100));
        assert_eq!(redactor.possible_match_start(&text), 100);
        // The URL-encoded form counts too.
        let text = format!("{}hunter2%2", "x".repeat(100));
        assert_eq!(redactor.possible_match_start(&text), 100);
        let text = format!("{}hunter2-secret", "x".repeat(100));
        assert_eq!(redactor.possible_match_start(&text), text.len());
        assert_eq!(redactor.possible_match_start("nothing"), 7);
        // Never more than half a piece, so the splitter always moves on.
        assert_eq!(redactor.possible_match_start("abcdhunt"), 4);
        assert_eq!(redactor.possible_match_start("ahunter"), 7);
        assert!(redactor.holds_secret("a hunter2-secret b"));
        assert!(!redactor.holds_secret("hunter2%2Dsecret"));
    }
}
