//! What comes with an owned relation without being named in `owns`: the
//! partitions (and inheritance children) of an owned table, present and
//! future, and the sequences its columns draw from (identity columns and
//! `serial`, i.e. `OWNED BY` the table). Each keeps privileges of its own,
//! so each is brought under the same owner and the same revokes.

use std::collections::{BTreeMap, BTreeSet};

use deed_ident::QualifiedName;
use deed_pg::{Client, PgError};

use crate::desired::Desired;
use crate::error::ContractError;

/// A sequence a table's column draws from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSequence {
    pub sequence: QualifiedName,
    /// The owned relation (the root of a partition tree) it belongs to.
    pub table: QualifiedName,
    /// An identity column's sequence: inserting needs no privilege on it.
    /// Otherwise (`serial`, `OWNED BY`) an insert's default calls
    /// `nextval`, which needs USAGE.
    pub identity: bool,
}

#[derive(Debug, Clone, Default)]
pub struct OwnedLive {
    /// Owned relation → every partition or child below it.
    pub children: BTreeMap<QualifiedName, Vec<QualifiedName>>,
    pub sequences: Vec<OwnedSequence>,
}

fn q(context: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError + '_ {
    move |e| PgError::query(context, e)
}

fn name(schema: String, relation: String) -> Option<QualifiedName> {
    QualifiedName::from_catalog(&schema, &relation).ok()
}

impl OwnedLive {
    pub async fn load(client: &Client, desired: &Desired) -> Result<OwnedLive, ContractError> {
        let owned: Vec<String> = desired.relations.iter().map(|r| r.relation.quoted()).collect();
        let mut live = OwnedLive::default();
        if owned.is_empty() {
            return Ok(live);
        }
        for row in client
            .query(
                "WITH RECURSIVE owned AS (
                     SELECT to_regclass(x) AS oid FROM unnest($1::text[]) x
                 ), tree AS (
                     SELECT i.inhrelid AS oid, o.oid AS root
                       FROM pg_inherits i JOIN owned o ON i.inhparent = o.oid
                     UNION
                     SELECT i.inhrelid, t.root FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
                 )
                 SELECT rn.nspname::text, r.relname::text, cn.nspname::text, c.relname::text
                   FROM tree
                   JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace cn ON cn.oid = c.relnamespace
                   JOIN pg_class r ON r.oid = tree.root JOIN pg_namespace rn ON rn.oid = r.relnamespace
                  ORDER BY 1, 2, 3, 4",
                &[&owned],
            )
            .await
            .map_err(q("reading partitions of owned tables"))?
        {
            if let (Some(root), Some(child)) =
                (name(row.get(0), row.get(1)), name(row.get(2), row.get(3)))
            {
                live.children.entry(root).or_default().push(child);
            }
        }
        let mut tables = owned;
        tables.extend(live.children.values().flatten().map(QualifiedName::quoted));
        let roots: BTreeMap<QualifiedName, QualifiedName> = live
            .children
            .iter()
            .flat_map(|(root, kids)| kids.iter().map(move |k| (k.clone(), root.clone())))
            .collect();
        for row in client
            .query(
                "SELECT sn.nspname::text, s.relname::text, tn.nspname::text, t.relname::text,
                        d.deptype = 'i'
                   FROM pg_depend d
                   JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                   JOIN pg_namespace sn ON sn.oid = s.relnamespace
                   JOIN pg_class t ON t.oid = d.refobjid
                   JOIN pg_namespace tn ON tn.oid = t.relnamespace
                  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                    AND d.deptype IN ('a', 'i')
                    AND d.refobjid IN (SELECT to_regclass(x) FROM unnest($1::text[]) x)
                  ORDER BY 1, 2",
                &[&tables],
            )
            .await
            .map_err(q("reading the sequences of owned tables"))?
        {
            let (Some(sequence), Some(table)) =
                (name(row.get(0), row.get(1)), name(row.get(2), row.get(3)))
            else {
                continue;
            };
            let table = roots.get(&table).cloned().unwrap_or(table);
            if !live.sequences.iter().any(|s| s.sequence == sequence) {
                live.sequences.push(OwnedSequence { sequence, table, identity: row.get(4) });
            }
        }
        Ok(live)
    }

    /// Schemas holding any of them, so their privileges are read too.
    pub fn schemas(&self) -> BTreeSet<String> {
        self.children
            .values()
            .flatten()
            .chain(self.sequences.iter().map(|s| &s.sequence))
            .map(|q| q.schema.as_str().to_string())
            .collect()
    }

    pub fn children_of(&self, relation: &QualifiedName) -> &[QualifiedName] {
        self.children.get(relation).map_or(&[], Vec::as_slice)
    }

    pub fn sequences_of<'a>(
        &'a self,
        relation: &'a QualifiedName,
    ) -> impl Iterator<Item = &'a OwnedSequence> + 'a {
        self.sequences.iter().filter(move |s| s.table == *relation)
    }
}
