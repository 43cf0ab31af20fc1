//! deed's event model, in one place: every name derived from a service
//! (its replication slot, publication, logical-message prefix, JetStream
//! stream and subjects) and the envelope every event travels in. Capture
//! setup, the relay and the consumers all take them from here, so they can
//! never disagree. (The tables deed keeps, the inbox among them, are
//! `deed_state`'s.)

mod envelope;
pub mod exposition;
mod json_form;
mod liveness;
mod names;
mod reached;
mod slot;

pub use envelope::{Envelope, Kind, Op, Position, Received, lsn_text, parse_lsn, push_json_str};
pub use json_form::{JsonForm, json_form, oid};
pub use liveness::{Liveness, STALL_AFTER};
pub use reached::Reached;
pub use slot::{capture_slot, pick_slot};

pub use names::{
    ADVISORY_LOCK_KEY, AMQP_EXCHANGE, SplitDirection, amqp_binding, amqp_stream, consumer_name,
    dead_letter_subject, epoch_prefix, event_subject, legacy_slot_name, message_prefix,
    moved_prefix, owner_role, publication_name, relay_role, service_subjects, slot_name,
    split_publication, split_subscription, stream_name,
};
