//! Reporters: turn run events into what people and programs read. The engine never prints;
//! these do.

mod human;
mod json;
mod news;

pub use human::Human;
pub use json::Json;
pub use news::lines as news_lines;

use crate::event::Event;

/// Something that shows a run as it happens.
pub trait Reporter: Send {
    fn event(&mut self, event: &Event);
}
