//! `Console`: the one way commands write to the terminal, every byte masked by the plan's
//! redactor.

use std::fmt::Display;
use std::io::Write;
use std::sync::Arc;

use crate::cli::Verbosity;
use crate::redact::Redactor;

use super::CommandError;

/// Stdout and stderr for a command. It starts with an empty redactor; [`Console::mask_with`]
/// installs the plan's as soon as the plan is rendered, so whatever a command prints after
/// that (tables, JSON, errors from storage or tools) cannot show a secret value.
#[derive(Default)]
pub struct Console {
    redactor: Arc<Redactor>,
    verbosity: Verbosity,
}

impl Console {
    /// A console for `--quiet` / `-v` as given on the command line.
    pub fn with_verbosity(verbosity: Verbosity) -> Self {
        Console {
            redactor: Arc::default(),
            verbosity,
        }
    }

    /// `--quiet`: print nothing on success, only what a failure needs.
    pub fn quiet(&self) -> bool {
        self.verbosity.quiet
    }

    /// How many `-v` were given.
    pub fn verbose(&self) -> u8 {
        self.verbosity.verbose
    }

    pub fn mask_with(&mut self, redactor: Arc<Redactor>) {
        self.redactor = redactor;
    }

    /// Writes `text` to stdout as it is (masked). A reader that went away (`| head`) is
    /// the reader's choice, not an error.
    pub fn out(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(self.redactor.redact(text).as_bytes()).ok();
        stdout.flush().ok();
    }

    /// `text` and a newline on stdout.
    pub fn line(&self, text: impl Display) {
        self.out(&format!("{text}\n"));
    }

    /// `planrun: message` on stderr: a note, or a problem the command reports and goes on after.
    pub fn notice(&self, message: impl Display) {
        self.err(&format!("planrun: {message}\n"));
    }

    /// `text` as it is (masked) on stderr: rendered diagnostics a command goes on after, and
    /// what a command shows people while stdout carries JSON (`recover --json`).
    pub fn status(&self, text: &str) {
        self.err(text);
    }

    /// The error that stopped a command, as [`CommandError::report`] words it.
    pub fn report(&self, error: &CommandError) {
        use std::io::IsTerminal;
        let colour = crate::diagnostic::colour(std::io::stderr().is_terminal());
        self.err(&error.report_with(colour));
    }

    fn err(&self, text: &str) {
        std::io::stderr()
            .lock()
            .write_all(self.redactor.redact(text).as_bytes())
            .ok();
    }
}
