//! The contract versions `deed check` follows through a migration, and
//! what the scratch database's catalog says about them: the relations they
//! depend on, the table columns beneath their columns, and which of them a
//! failed statement could not get past.

use std::collections::BTreeSet;

use deed_ident::QualifiedName;
use deed_manifest::{ContractRef, ContractShape, Manifest};
use deed_pg::{Client, PgError};
use deed_sql::OfflineLookup;

use crate::error::CheckError;
use crate::migration::Statement;
use crate::signature::Exposed;

/// Statements that change rows, not schema.
pub(crate) const DATA_COMMANDS: &[&str] =
    &["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "TRANSACTION", "SET", "SHOW"];

/// DDL whose whole effect is on the relations it names, so it cannot touch
/// a contract view that does not depend on one of them.
pub(crate) const RELATION_DDL: &[&str] =
    &["CREATE TABLE", "CREATE TABLE AS", "ALTER TABLE", "CREATE INDEX", "DROP", "ALTER ... RENAME"];

/// One contract version followed through the migrations.
pub(crate) struct Tracked {
    pub(crate) contract: ContractRef,
    pub(crate) view: QualifiedName,
    /// The relations its definition reads.
    pub(crate) reads: Vec<QualifiedName>,
    pub(crate) definition: deed_contracts::ContractView,
    pub(crate) consumers: Vec<String>,
    /// The consumed events whose payload this version is.
    pub(crate) events: Vec<crate::events::EventUse>,
    pub(crate) next_version: u32,
    pub(crate) exposed: Vec<Exposed>,
}

/// Every relation the contract views depend on, through any number of
/// views, and the views themselves.
pub(crate) async fn dependency_closure(
    client: &Client,
    views: &[QualifiedName],
) -> Result<BTreeSet<QualifiedName>, CheckError> {
    let names: Vec<String> = views.iter().map(QualifiedName::quoted).collect();
    let rows = client
        .query(
            "WITH RECURSIVE needs(oid) AS (
                 SELECT to_regclass(x) FROM unnest($1::text[]) x WHERE to_regclass(x) IS NOT NULL
                 UNION
                 SELECT d.refobjid FROM needs n
                   JOIN pg_rewrite r ON r.ev_class = n.oid
                   JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                                   AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> n.oid)
             SELECT ns.nspname::text, c.relname::text
               FROM needs JOIN pg_class c ON c.oid = needs.oid JOIN pg_namespace ns ON ns.oid = c.relnamespace",
            &[&names],
        )
        .await
        .map_err(|e| PgError::query("reading what the contract views depend on", e))?;
    Ok(rows.iter().filter_map(|r| QualifiedName::from_catalog(r.get(0), r.get(1)).ok()).collect())
}

/// The relations whose columns a contract's output columns come from: the
/// contract's `from` for a column list; for a query, the owned relations it
/// reads (an output column maps to the one of them with that column name).
pub(crate) fn sources(m: &Manifest, r: &ContractRef) -> Vec<QualifiedName> {
    let Some((service, contract)) = m.contract(r) else { return Vec::new() };
    match &contract.shape {
        ContractShape::Columns(_) => vec![contract.from.clone()],
        ContractShape::Query(q) => {
            let lookup = OfflineLookup { search_path: m.database.search_path.clone() };
            deed_sql::analyze(q, &lookup)
                .map(|a| {
                    a.combined()
                        .into_iter()
                        .map(|x| x.relation)
                        .filter(|rel| service.owns(rel))
                        .collect()
                })
                .unwrap_or_default()
        }
    }
}

/// The table columns beneath every contract's columns, by identity, in one
/// query. A view column found in several source relations is ambiguous and
/// not followed.
pub(crate) async fn exposed_all(
    client: &Client,
    m: &Manifest,
    views: &[(ContractRef, QualifiedName)],
) -> Result<Vec<Vec<Exposed>>, CheckError> {
    let (mut idx, mut view, mut table) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (r, v)) in views.iter().enumerate() {
        for t in sources(m, r) {
            idx.push(i as i32);
            view.push(v.quoted());
            table.push(t.quoted());
        }
    }
    let rows = client
        .query(
            "SELECT x.idx, v.attname::text, t.attrelid, t.attnum
               FROM unnest($1::int[], $2::text[], $3::text[]) AS x(idx, vname, tname)
               JOIN pg_attribute v ON v.attrelid = to_regclass(x.vname) AND v.attnum > 0 AND NOT v.attisdropped
               JOIN pg_attribute t ON t.attrelid = to_regclass(x.tname) AND t.attname = v.attname
                                  AND t.attnum > 0 AND NOT t.attisdropped
              ORDER BY x.idx, v.attnum",
            &[&idx, &view, &table],
        )
        .await
        .map_err(|e| PgError::query("reading the columns beneath contract views", e))?;
    let mut out: Vec<Vec<Exposed>> = vec![Vec::new(); views.len()];
    let mut ambiguous: BTreeSet<(usize, String)> = BTreeSet::new();
    for row in rows {
        let i = row.get::<_, i32>(0) as usize;
        let column: String = row.get(1);
        if out[i].iter().any(|e| e.view_column == column) {
            ambiguous.insert((i, column));
            continue;
        }
        out[i].push(Exposed { view_column: column, table: row.get(2), attnum: row.get(3) });
    }
    for (i, list) in out.iter_mut().enumerate() {
        list.retain(|e| !ambiguous.contains(&(i, e.view_column.clone())));
    }
    Ok(out)
}

/// The contract views a failed statement could not get past: those its
/// error names ("view catalog_api.products_v1 depends on column ..."), or,
/// since PostgreSQL names only the first dependent, every contract view that
/// depends (through any number of views) on a relation the statement alters.
pub(crate) async fn blocked_by(
    client: &Client,
    e: &tokio_postgres::Error,
    st: &Statement,
    tracked: &[Tracked],
) -> Result<Vec<usize>, CheckError> {
    use tokio_postgres::error::SqlState;
    let Some(db) = e.as_db_error() else { return Ok(Vec::new()) };
    let dependency = *db.code() == SqlState::DEPENDENT_OBJECTS_STILL_EXIST
        || (*db.code() == SqlState::FEATURE_NOT_SUPPORTED
            && db.message().contains("used by a view or rule"));
    if !dependency {
        return Ok(Vec::new());
    }
    let text = format!("{}\n{}", db.message(), db.detail().unwrap_or(""));
    let names = |needle: &str| {
        text.match_indices(needle).any(|(at, _)| {
            text[at + needle.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
        })
    };
    let written: Vec<String> = st.writes.iter().map(QualifiedName::quoted).collect();
    let rows = client
        .query(
            "WITH RECURSIVE dependents(oid) AS (
                 SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
                    AND d.refobjid IN (SELECT to_regclass(x) FROM unnest($1::text[]) x) AND r.ev_class <> d.refobjid
                 UNION
                 SELECT r.ev_class FROM dependents p
                   JOIN pg_depend d ON d.refobjid = p.oid AND d.classid = 'pg_rewrite'::regclass
                                   AND d.refclassid = 'pg_class'::regclass
                   JOIN pg_rewrite r ON r.oid = d.objid
                  WHERE r.ev_class <> p.oid)
             SELECT n.nspname::text, c.relname::text
               FROM dependents JOIN pg_class c ON c.oid = dependents.oid JOIN pg_namespace n ON n.oid = c.relnamespace",
            &[&written],
        )
        .await
        .map_err(|e| PgError::query("finding the views that depend on a migration's target", e))?;
    let dependents: Vec<QualifiedName> =
        rows.iter().filter_map(|r| QualifiedName::from_catalog(r.get(0), r.get(1)).ok()).collect();
    Ok(tracked
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            names(&format!("view {}", t.view))
                || names(&format!("view {}", t.view.name))
                || dependents.contains(&t.view)
        })
        .map(|(i, _)| i)
        .collect())
}
