pub use deed_events::{ADVISORY_LOCK_KEY, owner_role};

/// Every contract view's comment starts with this, so deed only ever drops
/// views it created.
pub const CONTRACT_MARKER: &str = "deed contract";
