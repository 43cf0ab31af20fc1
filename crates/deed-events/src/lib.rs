//! deed's event model, in one place: every name derived from a service
//! (its replication slot, publication, logical-message prefix, JetStream
//! stream and subjects). Capture setup, the relay and the consumers all
//! take their names from here, so they can never disagree.

mod names;

pub use names::{
    dead_letter_subject, event_subject, legacy_slot_name, message_prefix, publication_name,
    service_subjects, slot_name, stream_name,
};
