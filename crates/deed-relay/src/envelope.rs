//! The envelope lives in the event model (`deed-events`), shared by
//! capture, the relay and consumers.

pub use deed_events::{Envelope, Op, Position};
