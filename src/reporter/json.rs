//! `--json`: one event per line on stdout, for programs.

use std::io::Write;

use super::Reporter;
use crate::event::Event;

pub struct Json<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> Json<W> {
    pub fn new(out: W) -> Self {
        Json { out }
    }
}

impl<W: Write + Send> Reporter for Json<W> {
    fn event(&mut self, event: &Event) {
        // A reader that went away (`| head`) must not stop the run; the events also reach
        // the log and the run record.
        if serde_json::to_writer(&mut self.out, event).is_ok() {
            self.out.write_all(b"\n").ok();
        }
        if !matches!(event, Event::StepOutput { .. }) {
            self.out.flush().ok();
        }
    }
}
