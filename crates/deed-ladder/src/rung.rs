//! The rungs a data flow climbs.

use serde::{Serialize, Serializer};

/// Where a flow stands. Ordered: a later rung is further up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rung {
    /// Rung 0: the consumer reaches the owner's tables directly (seen in
    /// traffic, or held by grants), or reads nothing declared.
    Shared,
    /// Rung 1: it reads only contract versions.
    Contracted,
    /// Rung 2: it keeps its own copy from the owner's events.
    Projected,
    /// Rung 3: the copy is proven equal to the contract it replaces.
    Proven,
    /// Rung 3, done: the replaced reads are revoked.
    Severed,
    /// Rung 4: the owner's tables live in its own instance (`deed split`,
    /// finished).
    Separated,
}

impl Rung {
    pub fn number(self) -> u8 {
        match self {
            Rung::Shared => 0,
            Rung::Contracted => 1,
            Rung::Projected => 2,
            Rung::Proven | Rung::Severed => 3,
            Rung::Separated => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Rung::Shared => "shared",
            Rung::Contracted => "contracted",
            Rung::Projected => "projected",
            Rung::Proven => "proven",
            Rung::Severed => "severed",
            Rung::Separated => "separated",
        }
    }
}

impl Serialize for Rung {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}
