//! The live data line at a terminal: bytes moved so far (from [`crate::meter`]), the rate,
//! and when the total is known a bar and the time left. Drawn by indicatif on stderr and
//! cleared when dropped; callers create it only for a terminal, never under a pipe,
//! `--json` or `--quiet`.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::human_size;

pub struct LiveBytes {
    bar: ProgressBar,
}

impl LiveBytes {
    /// A line on stderr labelled `label`. `total` (bytes expected) adds a bar and an ETA.
    pub fn start(label: &str, total: Option<u64>) -> LiveBytes {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        LiveBytes::style(bar, label, total)
    }

    /// The same line as the last one of `multi` (the running steps' spinners).
    pub fn under(multi: &MultiProgress, label: &str) -> LiveBytes {
        let bar = multi.add(ProgressBar::new_spinner());
        LiveBytes::style(bar, label, None)
    }

    fn style(bar: ProgressBar, label: &str, total: Option<u64>) -> LiveBytes {
        let base = crate::meter::total();
        let moved = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let bytes = crate::meter::total().saturating_sub(base);
            let secs = state.elapsed().as_secs_f64().max(0.001);
            let rate = (bytes as f64 / secs) as u64;
            write!(w, "{} at {}/s", human_size(bytes), human_size(rate)).ok();
            if let Some(total) = total {
                let left = total.saturating_sub(bytes);
                write!(w, " of {}", human_size(total)).ok();
                if rate > 0 {
                    let eta = Duration::from_secs(left / rate.max(1));
                    write!(w, ", about {}s left", eta.as_secs()).ok();
                }
            }
        };
        let template = if total.is_some() {
            "{spinner} {prefix} [{wide_bar}] {moved}"
        } else {
            "{spinner} {prefix} {moved}"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key("moved", moved);
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        let live = LiveBytes { bar };
        if total.is_some() {
            live.follow(base);
        }
        live
    }

    /// Moves the bar to the meter's count (so indicatif fills it), from a small thread that
    /// ends with the bar.
    fn follow(&self, base: u64) {
        let bar = self.bar.downgrade();
        std::thread::spawn(move || {
            while let Some(bar) = bar.upgrade() {
                if bar.is_finished() {
                    break;
                }
                bar.set_position(crate::meter::total().saturating_sub(base));
                drop(bar);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    }
}

impl Drop for LiveBytes {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
