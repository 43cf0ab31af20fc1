use deed_ident::Ident;

/// The NOLOGIN role that owns a service's relations and api schema.
pub fn owner_role(service: &str) -> Ident {
    Ident::new(format!("deed_{service}_owner")).expect("service names are at most 40 bytes")
}

/// Every contract view's comment starts with this, so deed only ever drops
/// views it created.
pub const CONTRACT_MARKER: &str = "deed contract";

/// The advisory lock that keeps two `deed apply` runs from interleaving:
/// the bytes of "deed" and 1.
pub const ADVISORY_LOCK_KEY: i64 = 0x6465_6564_0000_0001;
