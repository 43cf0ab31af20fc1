//! Names derived from a service. Service names are lower-case words of at
//! most 40 bytes (the manifest checks), so every name here is a plain
//! identifier well inside PostgreSQL's 63 bytes and a valid NATS token.

use deed_ident::Ident;

/// The NOLOGIN role that owns a service's relations and api schema.
pub fn owner_role(service: &str) -> Ident {
    Ident::new(format!("deed_{service}_owner")).expect("service names are at most 40 bytes")
}

/// The login a service's relay signs in as: REPLICATION, to read its slot,
/// and nothing else (`deed apply` creates it; its password or client
/// certificate is the operator's to give).
pub fn relay_role(service: &str) -> Ident {
    Ident::new(format!("deed_{service}_relay")).expect("service names are at most 40 bytes")
}

/// The advisory lock every deed command that changes a database takes
/// (`deed apply`, `deed cutover`, `deed split`, a relay retiring a slot):
/// the bytes of "deed" and 1.
pub const ADVISORY_LOCK_KEY: i64 = 0x6465_6564_0000_0001;

/// The publication of a service's state-event tables: `deed_<service>`.
pub fn publication_name(service: &str) -> Ident {
    Ident::new(format!("deed_{service}")).expect("service names are short lower-case words")
}

/// The logical replication slot of a service in one database:
/// `deed_<service>_<database oid>`. Slot names are global to a server, so
/// the database is part of the name: the same service captured in two
/// databases of one server has two slots.
pub fn slot_name(service: &str, database_oid: u32) -> String {
    format!("deed_{service}_{database_oid}")
}

/// The slot name earlier versions used (`deed_<service>`), still read in
/// the database that has it, so an upgrade loses no event.
pub fn legacy_slot_name(service: &str) -> String {
    format!("deed_{service}")
}

/// The prefix of a service's domain events' logical messages.
pub fn message_prefix(service: &str) -> String {
    format!("deed:{service}")
}

/// The prefix of the logical message `deed split` writes on the side that
/// loses a service's writes, in the fence's transaction: a relay reading
/// that side has delivered everything of the old epoch when it sees it.
pub fn moved_prefix(service: &str) -> String {
    format!("deed-moved:{service}")
}

/// The prefix of the logical message that starts a new capture epoch on
/// the side that gains the writes (its content is the epoch number).
pub fn epoch_prefix(service: &str) -> String {
    format!("deed-epoch:{service}")
}

/// The JetStream stream of a service's events: `DEED_<SERVICE>`.
pub fn stream_name(service: &str) -> String {
    format!("DEED_{}", service.to_ascii_uppercase())
}

/// The subject an event is published on: `deed.<service>.<event>`.
pub fn event_subject(service: &str, event: &str) -> String {
    format!("deed.{service}.{event}")
}

/// Every subject of a service: `deed.<service>.>`.
pub fn service_subjects(service: &str) -> String {
    format!("deed.{service}.>")
}

/// The RabbitMQ topic exchange every service's events are published to,
/// with their subject as routing key.
pub const AMQP_EXCHANGE: &str = "deed";

/// The RabbitMQ stream queue holding a service's events: `deed.<service>`.
pub fn amqp_stream(service: &str) -> String {
    format!("deed.{service}")
}

/// What binds a service's stream queue to its events: `deed.<service>.#`.
pub fn amqp_binding(service: &str) -> String {
    format!("deed.{service}.#")
}

/// Where a service's undeliverable events are recorded.
pub fn dead_letter_subject(service: &str) -> String {
    format!("deed.{service}.dead_letter")
}

/// The publication `deed split` copies and follows a service's tables
/// through, in both databases: `deedsplit_<service>` (not `deed_…`, so it
/// can never be taken for the capture publication of a service named
/// `split_…`).
pub fn split_publication(service: &str) -> Ident {
    Ident::new(format!("deedsplit_{service}")).expect("service names are short lower-case words")
}

/// Which way a split's replication runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitDirection {
    /// From the shared database to the service's own (copy and follow).
    Forward,
    /// From the service's own database back to the shared one (after the
    /// cutover, for rung-1 readers and rollback).
    Back,
}

/// The subscription (and its slot, on the publishing server) of one
/// direction: `deedsplit_<service>_fwd` or `deedsplit_<service>_back`.
pub fn split_subscription(service: &str, direction: SplitDirection) -> Ident {
    let way = match direction {
        SplitDirection::Forward => "fwd",
        SplitDirection::Back => "back",
    };
    Ident::new(format!("deedsplit_{service}_{way}"))
        .expect("service names are short lower-case words")
}

/// The durable JetStream consumer of one projection:
/// `deed_<service>_<projection>`.
pub fn consumer_name(service: &str, projection: &str) -> String {
    format!("deed_{service}_{projection}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(slot_name("catalog", 16384), "deed_catalog_16384");
        assert_eq!(publication_name("catalog").as_str(), "deed_catalog");
        assert_eq!(stream_name("catalog"), "DEED_CATALOG");
        assert_eq!(event_subject("catalog", "product_changed"), "deed.catalog.product_changed");
        let longest = "a".repeat(40);
        assert!(slot_name(&longest, u32::MAX).len() <= 63);
        assert_eq!(split_publication("catalog").as_str(), "deedsplit_catalog");
        assert!(split_subscription(&longest, SplitDirection::Back).as_str().len() <= 63);
    }
}
