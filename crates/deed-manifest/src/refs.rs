use std::fmt;

use serde::{Serialize, Serializer};

/// `products.v1`: a contract version named inside its own service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContractKey {
    pub contract: String,
    pub version: u32,
}

/// `catalog.products.v1`: a contract version named from anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContractRef {
    pub service: String,
    pub contract: String,
    pub version: u32,
}

/// `catalog.product_changed`: an event named from anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventRef {
    pub service: String,
    pub event: String,
}

impl ContractKey {
    pub fn parse(text: &str) -> Option<Self> {
        let (contract, version) = text.split_once('.')?;
        Some(ContractKey { contract: name(contract)?, version: version_suffix(version)? })
    }
}

impl ContractRef {
    pub fn parse(text: &str) -> Option<Self> {
        let (service, rest) = text.split_once('.')?;
        let key = ContractKey::parse(rest)?;
        Some(ContractRef { service: name(service)?, contract: key.contract, version: key.version })
    }

    pub fn key(&self) -> ContractKey {
        ContractKey { contract: self.contract.clone(), version: self.version }
    }
}

impl EventRef {
    pub fn parse(text: &str) -> Option<Self> {
        let (service, event) = text.split_once('.')?;
        Some(EventRef { service: name(service)?, event: name(event)? })
    }
}

/// Service, contract and event names end up inside role names, view names
/// and NATS subjects, so they are restricted to lower-case words.
pub(crate) fn is_simple_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn name(s: &str) -> Option<String> {
    is_simple_name(s).then(|| s.to_string())
}

fn version_suffix(s: &str) -> Option<u32> {
    let digits = s.strip_prefix('v')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for ContractKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.v{}", self.contract, self.version)
    }
}

impl fmt::Display for ContractRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.v{}", self.service, self.contract, self.version)
    }
}

impl fmt::Display for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.service, self.event)
    }
}

impl Serialize for ContractRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for EventRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = ContractRef::parse("catalog.products.v12").unwrap();
        assert_eq!(
            (r.service.as_str(), r.contract.as_str(), r.version),
            ("catalog", "products", 12)
        );
        assert_eq!(r.to_string(), "catalog.products.v12");
        assert!(ContractRef::parse("catalog.products.1").is_none());
        assert!(ContractRef::parse("catalog.products.v0").is_none());
        assert!(ContractRef::parse("catalog.products.v01").is_none());
        assert!(ContractRef::parse("catalog.products").is_none());
        assert!(ContractRef::parse("Catalog.products.v1").is_none());
        let e = EventRef::parse("catalog.product_changed").unwrap();
        assert_eq!(e.to_string(), "catalog.product_changed");
        assert!(EventRef::parse("catalog.product.changed").is_none());
        assert_eq!(ContractKey::parse("products.v2").unwrap().version, 2);
    }
}
