//! Loading: read a plan file and the files it includes, parse their YAML, and merge the
//! shared sections into one JSON value that remembers where every node came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostic, Layer, Location};
use crate::trusted_file::{self, FileRole, ReadError};
use crate::yaml;

/// Sections an included file may define; they merge into the including plan by name.
pub const SHARED_SECTIONS: [&str; 5] = ["sources", "storage", "roles", "vars", "secrets"];

/// The merged plan value and everything needed to point back into the files.
#[derive(Debug)]
pub struct LoadedValue {
    pub value: serde_json::Value,
    /// JSON pointer (with `#key` for a mapping key itself) to where it stands.
    pub spans: HashMap<String, Location>,
    /// Every file read, in order, with its text: diagnostics show lines from them.
    pub texts: HashMap<Arc<PathBuf>, String>,
    /// sha256 over every file read, in load order, as hex.
    pub digest: String,
}

impl LoadedValue {
    /// Where the node at `pointer` stands, or the nearest enclosing node that has a position.
    pub fn locate(&self, pointer: &str) -> Option<Location> {
        let mut p = pointer.to_owned();
        loop {
            if let Some(location) = self.spans.get(&p) {
                return Some(location.clone());
            }
            match p.rfind('/') {
                Some(at) => p.truncate(at),
                None => return None,
            }
        }
    }

    /// Where the key (not the value) at `pointer` stands, falling back to the value.
    pub fn locate_key(&self, pointer: &str) -> Option<Location> {
        self.spans
            .get(&format!("{pointer}#key"))
            .cloned()
            .or_else(|| self.locate(pointer))
    }

    /// Attaches a location (and its source line) to a diagnostic.
    pub fn place(&self, diagnostic: Diagnostic, location: Option<Location>) -> Diagnostic {
        let text = location
            .as_ref()
            .and_then(|l| self.texts.get(&l.file))
            .cloned();
        let diagnostic = diagnostic.at(location);
        match text {
            Some(text) => diagnostic.with_source(&text),
            None => diagnostic,
        }
    }
}

/// Loads `path` and its includes. Errors are YAML or include diagnostics.
pub fn load(path: &Path) -> Result<LoadedValue, Vec<Diagnostic>> {
    let mut state = State {
        texts: HashMap::new(),
        hasher: Sha256::new(),
        spans: HashMap::new(),
    };
    let mut chain = Vec::new();
    let value = state.load_file(path, &mut chain, None)?;
    debug_assert!(chain.is_empty());
    Ok(LoadedValue {
        value,
        spans: state.spans,
        texts: state.texts,
        digest: crate::storage::hex(&state.hasher.finalize()),
    })
}

struct State {
    texts: HashMap<Arc<PathBuf>, String>,
    hasher: Sha256,
    spans: HashMap<String, Location>,
}

impl State {
    /// Reads, parses and merges one file. `chain` holds the files being loaded, outermost
    /// first, so a cycle or a missing file can be reported with how it was reached.
    fn load_file(
        &mut self,
        path: &Path,
        chain: &mut Vec<(PathBuf, PathBuf)>,
        included_at: Option<&Location>,
    ) -> Result<serde_json::Value, Vec<Diagnostic>> {
        let shown = Arc::new(path.to_owned());
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if let Some(start) = chain.iter().position(|(c, _)| *c == canonical) {
            let mut names: Vec<String> = chain[start..]
                .iter()
                .map(|(_, p)| p.display().to_string())
                .collect();
            names.push(path.display().to_string());
            return Err(vec![
                self.diag_at(
                    Diagnostic::error(
                        Layer::Include,
                        format!("include cycle: {}", names.join(" → ")),
                    )
                    .help("remove one of these includes; shared files must not include each other"),
                    included_at,
                ),
            ]);
        }
        let role = if chain.is_empty() {
            FileRole::Plan
        } else {
            FileRole::Include
        };
        let bytes = match trusted_file::read(path, role) {
            Ok(bytes) => bytes,
            Err(ReadError::Io(error)) => {
                let mut message = format!("cannot read {}: {}", path.display(), io_reason(&error));
                if !chain.is_empty() {
                    let via: Vec<String> =
                        chain.iter().map(|(_, p)| p.display().to_string()).collect();
                    message.push_str(&format!(" (included from {})", via.join(" → ")));
                }
                let layer = if chain.is_empty() {
                    Layer::Yaml
                } else {
                    Layer::Include
                };
                return Err(vec![
                    self.diag_at(Diagnostic::error(layer, message), included_at),
                ]);
            }
            Err(ReadError::Untrusted { message, fix }) => {
                return Err(vec![self.diag_at(
                    Diagnostic::error(Layer::Permissions, message).help(fix),
                    included_at,
                )]);
            }
            Err(error @ ReadError::NotAFile { .. }) => {
                return Err(vec![self.diag_at(
                    Diagnostic::error(Layer::Yaml, error.to_string()),
                    included_at,
                )]);
            }
            Err(error @ ReadError::TimedOut { .. }) => {
                return Err(vec![
                    self.diag_at(
                        Diagnostic::error(Layer::Yaml, error.to_string()).help(
                            "a pipe's writer must finish and close it; check the program that writes it",
                        ),
                        included_at,
                    ),
                ]);
            }
            Err(error @ ReadError::TooLarge { .. }) => {
                return Err(vec![
                    self.diag_at(
                        Diagnostic::error(Layer::Yaml, error.to_string())
                            .help("plans are a few kilobytes; is this the right file?"),
                        included_at,
                    ),
                ]);
            }
        };
        self.hasher.update(path.display().to_string().as_bytes());
        self.hasher.update([0]);
        self.hasher.update(&bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        self.texts.insert(shown.clone(), text.clone());
        let document = yaml::parse(&bytes).map_err(|error| {
            let location = Location {
                file: shown.clone(),
                line: error.line,
                column: error.column,
            };
            vec![
                Diagnostic::error(Layer::Yaml, error.message)
                    .at(Some(location))
                    .with_source(&text),
            ]
        })?;
        let position = |pointer: &str| {
            document.spans.get(pointer).map(|&(line, column)| Location {
                file: shown.clone(),
                line,
                column,
            })
        };

        let mut value = document.value.clone();
        let is_include = !chain.is_empty();
        if !value.is_object() {
            return Err(vec![
                Diagnostic::error(
                    if is_include {
                        Layer::Include
                    } else {
                        Layer::Schema
                    },
                    "a plan must be a mapping of keys such as `version`, `name` and `steps`",
                )
                .at(position(""))
                .with_source(&text),
            ]);
        }
        // Remember where this file's nodes are. An included file's nodes are recorded only
        // under the shared sections, where they end up after the merge.
        for (pointer, &(line, column)) in &document.spans {
            let keep = !is_include
                || SHARED_SECTIONS
                    .iter()
                    .any(|s| pointer.starts_with(&format!("/{s}/")));
            if keep {
                self.spans.entry(pointer.clone()).or_insert(Location {
                    file: shown.clone(),
                    line,
                    column,
                });
            }
        }

        let mut diagnostics = Vec::new();
        if is_include {
            for key in value
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                if key != "include" && !SHARED_SECTIONS.contains(&key.as_str()) {
                    diagnostics.push(
                        Diagnostic::error(
                            Layer::Include,
                            format!("`{key}` cannot be shared through `include`"),
                        )
                        .help(format!(
                            "an included file may define only {}",
                            SHARED_SECTIONS.map(|s| format!("`{s}`")).join(", ")
                        ))
                        .at(position(&format!("/{key}#key")))
                        .with_source(&text),
                    );
                }
            }
        }

        let includes = match value.get("include") {
            None => Vec::new(),
            Some(serde_json::Value::Array(items)) => items.clone(),
            Some(_) => {
                // The schema pass reports the wrong type with its location.
                Vec::new()
            }
        };
        chain.push((canonical, path.to_owned()));
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for (index, item) in includes.iter().enumerate() {
            let Some(name) = item.as_str() else { continue };
            let at = position(&format!("/include/{index}"));
            let target = base.join(name);
            match self.load_file(&target, chain, at.as_ref()) {
                Ok(included) => {
                    if let Err(mut found) = self.merge(&mut value, included, &target) {
                        diagnostics.append(&mut found);
                    }
                }
                Err(mut found) => diagnostics.append(&mut found),
            }
        }
        chain.pop();
        if diagnostics.is_empty() {
            Ok(value)
        } else {
            Err(diagnostics)
        }
    }

    /// Merges the shared sections of an included file into `into`. A name defined on both
    /// sides is an error naming both places.
    fn merge(
        &mut self,
        into: &mut serde_json::Value,
        included: serde_json::Value,
        included_path: &Path,
    ) -> Result<(), Vec<Diagnostic>> {
        let mut diagnostics = Vec::new();
        let serde_json::Value::Object(included) = included else {
            return Ok(());
        };
        let Some(target) = into.as_object_mut() else {
            return Ok(());
        };
        for section in SHARED_SECTIONS {
            let Some(serde_json::Value::Object(entries)) = included.get(section) else {
                continue;
            };
            let slot = target
                .entry(section)
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            let Some(slot) = slot.as_object_mut() else {
                continue;
            };
            for (name, entry) in entries {
                if slot.contains_key(name) {
                    let pointer = format!("/{section}/{name}");
                    let here = self.spans.get(&format!("{pointer}#key")).cloned();
                    let message = format!(
                        "{section} `{name}` is defined twice: here and in {}",
                        included_path.display()
                    );
                    diagnostics.push(
                        self.diag_at(
                            Diagnostic::error(Layer::Include, message)
                                .help("rename one of them, or remove the duplicate"),
                            here.as_ref(),
                        ),
                    );
                } else {
                    slot.insert(name.clone(), entry.clone());
                }
            }
        }
        if diagnostics.is_empty() {
            Ok(())
        } else {
            Err(diagnostics)
        }
    }

    fn diag_at(&self, diagnostic: Diagnostic, location: Option<&Location>) -> Diagnostic {
        let Some(location) = location else {
            return diagnostic;
        };
        let diagnostic = diagnostic.at(Some(location.clone()));
        match self.texts.get(&location.file) {
            Some(text) => diagnostic.with_source(text),
            None => diagnostic,
        }
    }
}

/// The OS error without Rust's "(os error 2)" suffix, lowercase like our other messages.
pub fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}
