//! Diagnostics: what validation found, where, and how to fix it; rendered for people or as JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

/// How serious a diagnostic is: errors make a plan invalid, warnings are advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// The validation layer that produced a diagnostic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Yaml,
    Include,
    /// A file another account could change (or read, for a secret), refused.
    Permissions,
    Schema,
    Meaning,
    Template,
    Advice,
    /// An old spelling that still works (`from:` in a restore step, `6m` for months):
    /// validation, `plan` and `execute` warn about it.
    Deprecation,
}

/// A position in a plan file, 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub column: usize,
}

/// One finding about a plan.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub layer: Layer,
    #[serde(skip)]
    pub location: Option<Location>,
    /// The key path, as `steps[2].timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The source line the location points into, shown with a caret.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    pub fn error(layer: Layer, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            layer,
            location: None,
            path: None,
            message: message.into(),
            help: None,
            source_line: None,
        }
    }

    pub fn warning(layer: Layer, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(layer, message)
        }
    }

    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = (!path.is_empty()).then_some(path);
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Fills in the source line from the file's text, for the caret display.
    pub fn with_source(mut self, text: &str) -> Self {
        if let Some(location) = &self.location {
            self.source_line = text
                .lines()
                .nth(location.line.saturating_sub(1))
                .map(str::to_owned);
        }
        self
    }

    /// `file:line:col: error: path: message`, the source line with a caret, then the help.
    pub fn render(&self, fallback_file: &Path) -> String {
        let mut out = String::new();
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.location {
            Some(l) => write!(out, "{}:{}:{}: ", l.file.display(), l.line, l.column),
            None => write!(out, "{}: ", fallback_file.display()),
        }
        .ok();
        write!(out, "{severity}: ").ok();
        if let Some(path) = &self.path {
            write!(out, "{path}: ").ok();
        }
        out.push_str(&self.message);
        out.push('\n');
        if let (Some(line), Some(location)) = (&self.source_line, &self.location) {
            let number = location.line.to_string();
            let pad = " ".repeat(number.len());
            // Tabs are shown as a visible arrow so the caret lines up with what the user sees.
            let shown = line.replace('\t', "→");
            let caret_at: usize = shown
                .chars()
                .take(location.column.saturating_sub(1))
                .map(|_| 1)
                .sum();
            writeln!(out, "{pad} |").ok();
            writeln!(out, "{number} | {shown}").ok();
            writeln!(out, "{pad} | {}^", " ".repeat(caret_at)).ok();
        }
        if let Some(help) = &self.help {
            writeln!(out, "  = help: {help}").ok();
        }
        out
    }

    /// [`Diagnostic::render`] for a person at a terminal: coloured and aligned by
    /// annotate-snippets (the renderer rustc uses). Plain text everywhere else, so logs,
    /// pipes and tests see the stable form.
    pub fn render_styled(&self, fallback_file: &Path) -> String {
        use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let title = match &self.path {
            Some(path) => format!("{path}: {}", self.message),
            None => self.message.clone(),
        };
        let file = match &self.location {
            Some(l) => l.file.display().to_string(),
            None => fallback_file.display().to_string(),
        };
        let mut group: Group<'_> = match (&self.source_line, &self.location) {
            (Some(line), Some(location)) => {
                // The caret's byte range in the line, from the 1-based character column.
                let start = line
                    .char_indices()
                    .nth(location.column.saturating_sub(1))
                    .map_or(line.len(), |(i, _)| i);
                let end = line[start..]
                    .chars()
                    .next()
                    .map_or(start, |c| start + c.len_utf8());
                level.primary_title(title).element(
                    Snippet::source(line.as_str())
                        .line_start(location.line)
                        .path(file)
                        .annotation(AnnotationKind::Primary.span(start..end)),
                )
            }
            (_, Some(location)) => level.primary_title(title).element(
                Origin::path(file)
                    .line(location.line)
                    .char_column(location.column),
            ),
            _ => level.primary_title(title).element(Origin::path(file)),
        };
        if let Some(help) = &self.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        let mut out = Renderer::styled().render(&[group]);
        out.push('\n');
        out
    }

    /// The JSON form used by `--format json`.
    pub fn to_json(&self, fallback_file: &Path) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(map) = &mut value {
            let (file, line, column) = match &self.location {
                Some(l) => (l.file.display().to_string(), Some(l.line), Some(l.column)),
                None => (fallback_file.display().to_string(), None, None),
            };
            map.insert("file".into(), file.into());
            map.insert("line".into(), line.into());
            map.insert("column".into(), column.into());
        }
        value
    }
}

/// Whether diagnostics written to a stream are coloured: only for a terminal, and never
/// when `NO_COLOR` is set to anything (https://no-color.org).
pub fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The nearest candidate to `wrong`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(wrong, c), c))
        .filter(|(distance, c)| {
            *distance <= 2.max(c.len() / 3) && *distance < c.len().max(wrong.len())
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Turns a JSON pointer (`/steps/2/timeout`) into the key path users read (`steps[2].timeout`).
pub fn key_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            write!(out, "[{segment}]").ok();
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_read_like_code() {
        assert_eq!(key_path("/steps/2/timeout"), "steps[2].timeout");
        assert_eq!(key_path(""), "");
        assert_eq!(
            key_path("/recovery/levels/1/steps/0"),
            "recovery.levels[1].steps[0]"
        );
    }

    #[test]
    fn suggestions_are_close() {
        assert_eq!(did_you_mean("dbb", ["db", "media"]), Some("db"));
        assert_eq!(
            did_you_mean("timout", ["timeout", "retries"]),
            Some("timeout")
        );
        assert_eq!(did_you_mean("zzz", ["db", "media"]), None);
    }
}
