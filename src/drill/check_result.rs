//! `CheckResult`: what one check found, the same record for a drill's report and a `check`
//! step's event: what was expected, what was found, and whether they agree.

use serde::{Deserialize, Serialize};

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's `name`, or a description of it.
    pub name: String,
    /// `sql`, `files`, `verify`, `run`, `http`, or `restore` for what a drill checks while
    /// it restores (the git HEAD, the artifacts' sha256).
    pub kind: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
    /// One line a person can act on: why it failed, or what passed.
    pub message: String,
    pub duration_ms: u64,
}

impl CheckResult {
    pub fn new(name: &str, kind: &str) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            kind: kind.to_owned(),
            expected: String::new(),
            actual: String::new(),
            passed: false,
            message: String::new(),
            duration_ms: 0,
        }
    }

    /// Compared: passed when `passed`, with the message worded from both values.
    pub fn compared(mut self, expected: String, actual: String, passed: bool) -> CheckResult {
        self.message = if passed {
            format!("{actual}, as expected")
        } else {
            format!("expected {expected}, found {actual}")
        };
        self.expected = expected;
        self.actual = actual;
        self.passed = passed;
        self
    }

    /// Could not be carried out (a query error, an unreachable server, nothing recorded).
    pub fn failed(mut self, expected: String, message: impl Into<String>) -> CheckResult {
        self.expected = expected;
        self.actual = "-".into();
        self.passed = false;
        self.message = message.into();
        self
    }
}
