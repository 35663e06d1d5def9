//! The one way `recover` asks a person something: a question on the terminal, answered by a
//! whole word typed on stdin, so that one stray key never confirms anything. Without a
//! terminal on stdin nothing is asked at all: the caller fails closed before it starts.

use std::io::{BufRead, IsTerminal};

/// An answer to a question: one of the choices offered, with what was typed after it
/// (a reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// One of the offered words.
    Word(&'static str),
    /// stdin ended (the terminal went away): treated as abort by every caller.
    Closed,
}

/// Questions asked on the terminal.
pub struct Prompt {
    interactive: bool,
}

impl Prompt {
    /// A prompt over stdin, interactive only when stdin is a terminal.
    pub fn from_stdin() -> Prompt {
        Prompt {
            interactive: std::io::stdin().is_terminal(),
        }
    }

    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Asks `question` until one of `choices` is typed in full (case and surrounding space
    /// ignored). `show` prints the question (through the console, masked).
    pub fn choose(&self, question: &str, choices: &[&'static str], show: &dyn Fn(&str)) -> Reply {
        let words = choices.join(" / ");
        loop {
            show(&format!("{question} [{words}] "));
            let Some(line) = read_line() else {
                return Reply::Closed;
            };
            let typed = line.trim().to_ascii_lowercase();
            if let Some(word) = choices.iter().find(|c| **c == typed) {
                return Reply::Word(word);
            }
            if !typed.is_empty() {
                show(&format!(
                    "`{}` is not an answer: type one of {words} in full\n",
                    line.trim()
                ));
            }
        }
    }

    /// Asks for a non-empty line of text (a reason); `None` when stdin ended.
    pub fn text(&self, question: &str, show: &dyn Fn(&str)) -> Option<String> {
        loop {
            show(&format!("{question} "));
            let line = read_line()?;
            let text = line.trim();
            if !text.is_empty() {
                return Some(text.to_owned());
            }
            show("a reason is required\n");
        }
    }
}

/// One line from stdin, without its newline; `None` at the end.
fn read_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_owned()),
    }
}
