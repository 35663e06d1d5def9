//! Reporters: turn run events into what people and programs read. The engine never prints;
//! these do.

mod human;
mod json;

pub use human::Human;
pub use json::Json;

use crate::event::Event;

/// Something that shows a run as it happens.
pub trait Reporter: Send {
    fn event(&mut self, event: &Event);
}
