//! SQL stored in the database: functions and procedures, the trigger
//! functions of each table, rewrite rules, and row-security policies. No
//! client sends these statements, so only the catalog shows them.
//!
//! A function's body is attributed to the service whose role owns it (its
//! owner role or a login); a trigger's function also to the service that
//! owns the table it fires on, since it runs inside that service's writes;
//! rules and policies to the owner of their table.

use deed_ident::QualifiedName;
use deed_manifest::Manifest;
use deed_pg::{Client, PgError};

use super::SourceSummary;
use crate::attribution::Attribution;
use crate::collector::Collector;
use crate::error::AuditError;

fn q(context: &str) -> impl FnOnce(deed_pg::DbError) -> PgError + '_ {
    move |e| PgError::query(context, e)
}

/// Non-system schemas that are not deed's, and objects that are not part
/// of an extension.
const USER_OBJECTS: &str =
    "n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', 'deed')";

pub async fn read_database_code(
    client: &Client,
    manifest: Option<&Manifest>,
    attribution: &Attribution<'_>,
    collector: &mut Collector<'_>,
) -> Result<SourceSummary, AuditError> {
    let before = collector.statements();
    let mut notes = Vec::new();
    let owner_of_table = |schema: &str, table: &str| -> Option<String> {
        let rel = QualifiedName::from_catalog(schema, table).ok()?;
        manifest?.owner_of(&rel).map(|s| s.name.clone())
    };
    // Functions and procedures, with how often they ran when known.
    let functions = client
        .query(
            &format!(
                "SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text,
                        pg_get_functiondef(p.oid), coalesce(s.calls, 0)::int8
                   FROM pg_proc p
                   JOIN pg_namespace n ON n.oid = p.pronamespace
                   JOIN pg_language l ON l.oid = p.prolang
                   LEFT JOIN pg_stat_user_functions s ON s.funcid = p.oid
                  WHERE {USER_OBJECTS} AND p.prokind IN ('f', 'p')
                    AND l.lanname IN ('sql', 'plpgsql')
                    AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass
                                     AND e.objid = p.oid AND e.deptype = 'e')
                  ORDER BY 1"
            ),
            &[],
        )
        .await
        .map_err(q("reading function definitions"))?;
    let mut definitions = std::collections::HashMap::new();
    for row in &functions {
        let (signature, owner, definition, calls): (String, String, String, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let service = attribution.service_for_role(&owner);
        collector.add(&service, &definition, calls.max(1) as u64);
        definitions.insert(signature, definition);
    }
    // Each trigger's function runs inside the writes of its table's owner.
    let triggers = client
        .query(
            &format!(
                "SELECT n.nspname::text, c.relname::text, t.tgfoid::regprocedure::text
                   FROM pg_trigger t
                   JOIN pg_class c ON c.oid = t.tgrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE NOT t.tgisinternal AND {USER_OBJECTS}"
            ),
            &[],
        )
        .await
        .map_err(q("reading triggers"))?;
    for row in &triggers {
        let (schema, table, function): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let (Some(service), Some(definition)) =
            (owner_of_table(&schema, &table), definitions.get(&function))
        else {
            continue;
        };
        collector.add(&service, definition, 1);
    }
    // Rules other than views' and the expressions of row-security
    // policies, as their table's owner's.
    let rules = client
        .query(
            &format!(
                "SELECT n.nspname::text, c.relname::text, pg_get_ruledef(r.oid)
                   FROM pg_rewrite r
                   JOIN pg_class c ON c.oid = r.ev_class
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE r.rulename <> '_RETURN' AND {USER_OBJECTS}
                 UNION ALL
                 SELECT p.schemaname::text, p.tablename::text,
                        format('SELECT 1 FROM %I.%I WHERE (%s) AND (%s)', p.schemaname, p.tablename,
                               coalesce(p.qual, 'true'), coalesce(p.with_check, 'true'))
                   FROM pg_policies p JOIN pg_namespace n ON n.nspname = p.schemaname
                  WHERE {USER_OBJECTS}"
            ),
            &[],
        )
        .await
        .map_err(q("reading rules and policies"))?;
    for row in &rules {
        let (schema, table, text): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let service =
            owner_of_table(&schema, &table).unwrap_or_else(|| attribution.service(None, None));
        collector.add(&service, &text, 1);
    }
    if functions.is_empty() && triggers.is_empty() && rules.is_empty() {
        notes
            .push("the database holds no functions, triggers, rules or policies of its own".into());
    }
    Ok(SourceSummary {
        kind: "database code".into(),
        detail: format!(
            "{}, {}, {}",
            deed_text::plural(functions.len() as u64, "function", "functions"),
            deed_text::plural(triggers.len() as u64, "trigger", "triggers"),
            deed_text::plural(rules.len() as u64, "rule or policy", "rules and policies"),
        ),
        statements: collector.statements() - before,
        notes,
        warnings: Vec::new(),
    })
}
