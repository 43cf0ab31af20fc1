//! Whether moving a state event to another contract version keeps its
//! `compatibility` rule, in Schema Registry's sense, checked against every
//! earlier version of the contract still in the manifest (transitive).
//!
//! An event's payload is the captured table's row, limited to the
//! contract's columns, so a column's type is the table's whichever
//! version carries it; what a version move changes is which columns
//! arrive. A reader meets a column it expects and the writer did not send
//! as missing, which is harmless only where the reader treats the column
//! as optional: where the table lets it be NULL. A column the reader does
//! not know is ignored.
//!
//! - `backward`: a consumer on the new version reads events written with
//!   an earlier one: a column the new version adds must be nullable.
//! - `forward`: a consumer on an earlier version reads events of the new
//!   one: a column the new version drops must be nullable.
//! - `full`: both; `none`: anything.

use std::collections::BTreeSet;

use deed_manifest::Compatibility;

/// What breaks the rule between the new version's columns and one earlier
/// version's (`earlier` names it), in words; empty when nothing does.
pub fn breaks(
    rule: Compatibility,
    new: &[String],
    earlier: (&str, &[String]),
    nullable: &BTreeSet<String>,
) -> Vec<String> {
    let (name, old) = earlier;
    let mut out = Vec::new();
    if matches!(rule, Compatibility::Backward | Compatibility::Full) {
        for c in new.iter().filter(|c| !old.contains(c) && !nullable.contains(*c)) {
            out.push(format!(
                "it adds {c}, which is NOT NULL: a consumer of the new version reading an event of {name} finds it missing (backward)"
            ));
        }
    }
    if matches!(rule, Compatibility::Forward | Compatibility::Full) {
        for c in old.iter().filter(|c| !new.contains(c) && !nullable.contains(*c)) {
            out.push(format!(
                "it drops {c}, which is NOT NULL in {name}: a consumer of {name} reading a new event finds it missing (forward)"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_rule_allows_what_schema_registry_allows() {
        let nullable: BTreeSet<String> = ["note".to_string()].into_iter().collect();
        let v1 = cols(&["id", "name"]);
        let added_nullable = cols(&["id", "name", "note"]);
        let added_required = cols(&["id", "name", "price"]);
        let dropped = cols(&["id"]);
        use Compatibility::{Backward, Forward, Full, None};
        let b = |rule, new: &[String]| breaks(rule, new, ("s.p.v1", &v1), &nullable).len();
        assert_eq!(b(Backward, &added_nullable), 0);
        assert_eq!(b(Backward, &added_required), 1);
        assert_eq!(b(Backward, &dropped), 0);
        assert_eq!(b(Forward, &added_required), 0);
        assert_eq!(b(Forward, &dropped), 1, "name is NOT NULL");
        assert_eq!(b(Full, &added_required), 1);
        assert_eq!(b(Full, &dropped), 1);
        assert_eq!(b(Full, &added_nullable), 0);
        assert_eq!(b(None, &added_required) + b(None, &dropped), 0);
        let why = breaks(Backward, &added_required, ("s.p.v1", &v1), &nullable);
        assert!(why[0].contains("adds price") && why[0].contains("s.p.v1"), "{why:?}");
    }
}
