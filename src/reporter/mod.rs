//! Reporters: turn run events into what people and programs read. The engine never prints;
//! these do.

mod human;
mod json;
mod live_bytes;
mod news;

pub use human::{Detail, Human};
pub use json::Json;
pub use live_bytes::LiveBytes;
pub use news::{brief as news_brief, count, lines as news_lines};

use crate::event::Event;

/// Something that shows a run as it happens.
pub trait Reporter: Send {
    fn event(&mut self, event: &Event);
}

/// `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
