//! What cannot cross instances, found before anything is created: every
//! reason at once, each with where it is (the manifest's line for what the
//! manifest names, the relation or object for what the database holds).

use std::fmt;

use deed_contracts::{CONTRACT_MARKER, owner_role};
use deed_ident::QualifiedName;
use deed_manifest::{Manifest, Service};
use deed_pg::Client;
use serde::Serialize;

use crate::error::{SplitError, query};
use crate::inspect::Inspected;

#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// `deed.toml:12:9` or the object in the database.
    pub at: String,
    pub reason: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.at, self.reason, self.fix)
    }
}

fn refusal(at: impl Into<String>, reason: impl Into<String>, fix: impl Into<String>) -> Refusal {
    Refusal { at: at.into(), reason: reason.into(), fix: fix.into() }
}

/// Reasons found in the manifest and the shared database's catalog.
pub async fn source_refusals(
    client: &Client,
    manifest: &Manifest,
    service: &Service,
    found: &Inspected,
) -> Result<Vec<Refusal>, SplitError> {
    let mut out = Vec::new();
    let owner = owner_role(&service.name);
    let at = |r: &QualifiedName| service.owns_location(r).to_string();
    for r in &found.missing {
        out.push(refusal(
            at(r),
            format!("{r} does not exist"),
            "create it or take it out of `owns`",
        ));
    }
    for (r, kind) in &found.not_tables {
        let what = match kind {
            'v' => "a view",
            'm' => "a materialized view",
            'S' => "a sequence",
            'f' => "a foreign table",
            _ => "not a table",
        };
        out.push(refusal(
            at(r),
            format!("{r} is {what}; deed split moves tables (and the sequences they use)"),
            "take it out of `owns`, or move it by hand after the split",
        ));
    }
    for t in &found.tables {
        let here = at(&t.name);
        if t.kind == 'p' {
            out.push(refusal(
                &here,
                format!("{} is partitioned", t.name),
                "partitioned tables are not moved yet; move it by hand",
            ));
        }
        if t.persistence == 'u' {
            out.push(refusal(
                &here,
                format!("{} is UNLOGGED: logical replication cannot copy it", t.name),
                "ALTER TABLE … SET LOGGED first",
            ));
        }
        if t.row_security {
            out.push(refusal(
                &here,
                format!("{} has row-level security, whose policies are not moved", t.name),
                "disable it, or move the policies by hand",
            ));
        }
        if t.key.is_empty() {
            out.push(refusal(&here, format!("{} has no primary key: updates and deletes cannot be followed, nor rows compared", t.name), "add a primary key"));
        }
        if t.owner != owner.as_str() {
            out.push(refusal(
                &here,
                format!("{} is owned by {}, not {owner}", t.name, t.owner),
                "run `deed apply` first",
            ));
        }
        for c in t.constraints.iter().filter(|c| c.kind == 'f') {
            if let Some(to) = c.references.filter(|o| found.table(*o).is_none()) {
                let name = relation_name(client, to).await?;
                let whose = owner_text(manifest, &name);
                out.push(refusal(
                    format!("{}: constraint {}", t.name, c.name),
                    format!("a foreign key to {name}{whose}, which stays in the shared database"),
                    "drop the constraint (check the reference in the application), or move both tables",
                ));
            }
        }
    }
    let oids = found.table_oids();
    dependents(client, manifest, service, &oids, &mut out).await?;
    shared_sequences(client, found, &mut out).await?;
    writers(client, manifest, &oids, &mut out).await?;
    Ok(out)
}

fn owner_text(manifest: &Manifest, name: &str) -> String {
    QualifiedName::parse_sql(name)
        .ok()
        .and_then(|q| manifest.owner_of(&q).map(|s| format!(" (owned by {})", s.name)))
        .unwrap_or_default()
}

async fn relation_name(client: &Client, oid: u32) -> Result<String, SplitError> {
    Ok(client
        .query_one("SELECT $1::oid::regclass::text", &[&oid])
        .await
        .map_err(query("naming a relation"))?
        .get(0))
}

/// Foreign keys into the tables, views and SQL functions over them,
/// triggers on them, and inheritance.
async fn dependents(
    client: &Client,
    manifest: &Manifest,
    service: &Service,
    oids: &[u32],
    out: &mut Vec<Refusal>,
) -> Result<(), SplitError> {
    let rows = client
        .query(
            "SELECT conrelid::regclass::text, conname::text, confrelid::regclass::text
               FROM pg_constraint
              WHERE contype = 'f' AND confrelid = ANY($1) AND NOT conrelid = ANY($1)
              ORDER BY 1, 2",
            &[&oids],
        )
        .await
        .map_err(query("reading foreign keys into the tables"))?;
    for r in rows {
        let from: String = r.get(0);
        out.push(refusal(
            format!("{from}: constraint {}", r.get::<_, String>(1)),
            format!(
                "{from}{} has a foreign key to {}",
                owner_text(manifest, &from),
                r.get::<_, String>(2)
            ),
            "drop the constraint (the reference cannot be checked across instances)",
        ));
    }
    let rows = client
        .query(
            "SELECT DISTINCT v.oid::regclass::text, v.relkind::text, n.nspname::text,
                    coalesce(obj_description(v.oid, 'pg_class'), ''), d.refobjid::regclass::text
               FROM pg_depend d
               JOIN pg_rewrite r ON r.oid = d.objid
               JOIN pg_class v ON v.oid = r.ev_class
               JOIN pg_namespace n ON n.oid = v.relnamespace
              WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
                AND d.refobjid = ANY($1) AND v.oid <> d.refobjid
              ORDER BY 1",
            &[&oids],
        )
        .await
        .map_err(query("reading the views over the tables"))?;
    for r in rows {
        let view: String = r.get(0);
        let schema: String = r.get(2);
        let comment: String = r.get(3);
        // Contract views stay, fed by the reverse replication.
        if comment.starts_with(CONTRACT_MARKER) {
            continue;
        }
        let kind = if r.get::<_, String>(1) == "m" { "materialized view" } else { "view" };
        let whose = if schema == service.api_schema.as_str() {
            String::new()
        } else {
            owner_text(manifest, &view)
        };
        out.push(refusal(
            format!("{kind} {view}"),
            format!("{kind} {view}{whose} reads {}", r.get::<_, String>(4)),
            "publish what it needs as a contract (`deed apply`), or drop it",
        ));
    }
    let rows = client
        .query(
            "SELECT DISTINCT p.oid::regprocedure::text, d.refobjid::regclass::text
               FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
              WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass
                AND d.refobjid = ANY($1)
              ORDER BY 1",
            &[&oids],
        )
        .await
        .map_err(query("reading the functions over the tables"))?;
    for r in rows {
        out.push(refusal(
            format!("function {}", r.get::<_, String>(0)),
            format!("its body reads {}", r.get::<_, String>(1)),
            "drop it, or recreate it on the target by hand after the split",
        ));
    }
    let rows = client
        .query(
            "SELECT tgrelid::regclass::text, tgname::text, tgfoid::regprocedure::text
               FROM pg_trigger WHERE tgrelid = ANY($1) AND NOT tgisinternal ORDER BY 1, 2",
            &[&oids],
        )
        .await
        .map_err(query("reading the triggers"))?;
    for r in rows {
        out.push(refusal(
            format!("{}: trigger {}", r.get::<_, String>(0), r.get::<_, String>(1)),
            format!("triggers and their functions ({}) are not moved", r.get::<_, String>(2)),
            "drop the trigger, split, and create it on the target",
        ));
    }
    let rows = client
        .query(
            "SELECT inhrelid::regclass::text, inhparent::regclass::text FROM pg_inherits
              WHERE inhrelid = ANY($1) OR inhparent = ANY($1) ORDER BY 1",
            &[&oids],
        )
        .await
        .map_err(query("reading inheritance"))?;
    for r in rows {
        out.push(refusal(
            r.get::<_, String>(0),
            format!("inherits from {}", r.get::<_, String>(1)),
            "inheritance and partitions are not moved yet",
        ));
    }
    Ok(())
}

/// A sequence the tables use that another table's default also draws
/// from: two instances cannot share one counter.
async fn shared_sequences(
    client: &Client,
    found: &Inspected,
    out: &mut Vec<Refusal>,
) -> Result<(), SplitError> {
    let seqs: Vec<u32> = found.sequences.iter().map(|s| s.oid).collect();
    let rows = client
        .query(
            "SELECT DISTINCT d.refobjid::regclass::text, ad.adrelid::regclass::text
               FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
              WHERE d.classid = 'pg_attrdef'::regclass AND d.refobjid = ANY($1)
                AND NOT ad.adrelid = ANY($2)
              ORDER BY 1, 2",
            &[&seqs, &found.table_oids()],
        )
        .await
        .map_err(query("reading who else uses the sequences"))?;
    for r in rows {
        out.push(refusal(
            format!("sequence {}", r.get::<_, String>(0)),
            format!("{} draws from it too", r.get::<_, String>(1)),
            "give that table its own sequence (two instances cannot share one counter)",
        ));
    }
    Ok(())
}

/// Roles outside the service that may write its tables: after the move
/// their writes would land on a read-only replica.
async fn writers(
    client: &Client,
    manifest: &Manifest,
    oids: &[u32],
    out: &mut Vec<Refusal>,
) -> Result<(), SplitError> {
    let rows = client
        .query(
            "SELECT c.oid::regclass::text,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
                    string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = ANY($1)
                AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
                AND (a.grantee = 0 OR NOT pg_has_role(a.grantee, c.relowner, 'MEMBER'))
              GROUP BY 1, 2 ORDER BY 1, 2",
            &[&oids],
        )
        .await
        .map_err(query("reading who may write the tables"))?;
    for r in rows {
        let grantee: String = r.get(1);
        let whose = manifest
            .services
            .iter()
            .find(|s| owner_role(&s.name).as_str() == grantee)
            .map(|s| format!(" (service {})", s.name))
            .unwrap_or_default();
        out.push(refusal(
            r.get::<_, String>(0),
            format!(
                "{grantee}{whose} may {} it; its writes would land on a read-only replica",
                r.get::<_, String>(2)
            ),
            "revoke the write (or end its exception), so only the owner writes",
        ));
    }
    Ok(())
}
