//! What a contract view's query may do, decided on the tree PostgreSQL
//! itself built for it (the view's rewrite rule), not on deed's reading of
//! the text: a contract is read by other services as often as they like,
//! so it must be a plain read. No function that changes anything (only
//! `IMMUTABLE` and `STABLE` ones), none of the administrative functions
//! that read the server rather than the data, no `SECURITY DEFINER`
//! function of another owner (it reads with that owner's rights), no row
//! locks, and no whole-row reference (`SELECT p FROM products p`,
//! `row_to_json(p)`), which publishes every column like `*` does.

use deed_pg::{Client, PgError};

use crate::error::ContractError;

/// Functions of `pg_catalog` that read the server, its files or its
/// sessions rather than the contract's data. Volatile ones are refused
/// anyway; these are the stable ones, and the families below.
const DENIED: &[&str] = &[
    "current_setting",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "database_to_xmlschema",
    "inet_client_addr",
    "inet_client_port",
    "inet_server_addr",
    "inet_server_port",
    "pg_backend_pid",
    "pg_conf_load_time",
    "pg_current_logfile",
    "pg_current_xact_id",
    "pg_postmaster_start_time",
    "pg_settings_get_flags",
    "pg_tablespace_location",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "schema_to_xmlschema",
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "table_to_xmlschema",
    "txid_current",
    "version",
];
const DENIED_PREFIXES: &[&str] =
    &["pg_stat_get_", "pg_read_", "pg_ls_", "pg_stat_file", "lo_", "query_to_xml", "cursor_to_"];

/// What the rule tree shows, found by its node keywords.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TreeFacts {
    pub functions: Vec<u32>,
    pub operators: Vec<u32>,
    pub whole_row: bool,
    pub row_marks: bool,
}

/// Scans a `pg_node_tree` text (`{FUNCEXPR :funcid 1317 …}`).
pub(crate) fn scan(tree: &str) -> TreeFacts {
    let mut facts = TreeFacts::default();
    let push = |list: &mut Vec<u32>, v: u32| {
        if v != 0 && !list.contains(&v) {
            list.push(v);
        }
    };
    let mut rest = tree;
    while let Some(i) = rest.find(':') {
        rest = &rest[i + 1..];
        let key_end = rest.find(' ').unwrap_or(rest.len());
        let (key, after) = rest.split_at(key_end);
        let after = after.trim_start();
        let number = || -> Option<u32> {
            let end = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
            after[..end].parse().ok()
        };
        match key {
            "funcid" | "aggfnoid" | "winfnoid" | "opfuncid" => {
                if let Some(n) = number() {
                    push(&mut facts.functions, n);
                }
            }
            "opno" => {
                if let Some(n) = number() {
                    push(&mut facts.operators, n);
                }
            }
            "opnos" => {
                // `(o 97 664)`
                if let Some(list) = after.strip_prefix("(o").and_then(|l| l.split(')').next()) {
                    for n in list.split_whitespace().filter_map(|n| n.parse().ok()) {
                        push(&mut facts.operators, n);
                    }
                }
            }
            "varattno" => facts.whole_row |= number() == Some(0),
            "rowMarks" => facts.row_marks |= after.starts_with("({ROWMARKCLAUSE"),
            _ => {}
        }
    }
    facts
}

/// The first thing in the tree a contract may not do, in words, or `None`.
pub(crate) async fn check(
    client: &Client,
    tree: &str,
    owner_role: &str,
) -> Result<Option<String>, ContractError> {
    let facts = scan(tree);
    if facts.row_marks {
        return Ok(Some("locks rows (FOR UPDATE/SHARE); a contract query is a plain read".into()));
    }
    if facts.whole_row {
        return Ok(Some(
            "uses a whole-row reference (like `SELECT p` or `row_to_json(p)`), which publishes every column as `*` would; list the columns".into(),
        ));
    }
    if facts.functions.is_empty() && facts.operators.is_empty() {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT p.oid::regprocedure::text, p.provolatile::text, p.prosecdef,
                    n.nspname::text, p.proname::text, pg_get_userbyid(p.proowner)::text
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE p.oid = ANY($1::oid[])
                 OR p.oid IN (SELECT o.oprcode FROM pg_operator o WHERE o.oid = ANY($2::oid[]))
              ORDER BY p.provolatile = 'v' DESC, 1",
            &[&facts.functions, &facts.operators],
        )
        .await
        .map_err(|e| PgError::query("reading the functions a contract query calls", e))?;
    for row in rows {
        let (signature, volatility, definer): (String, String, bool) =
            (row.get(0), row.get(1), row.get(2));
        let (schema, name, owner): (String, String, String) = (row.get(3), row.get(4), row.get(5));
        if volatility == "v" {
            return Ok(Some(format!(
                "calls {signature}, a VOLATILE function (it may change something, or give another answer each time); a contract query may call only IMMUTABLE and STABLE functions"
            )));
        }
        if schema == "pg_catalog"
            && (DENIED.contains(&name.as_str())
                || DENIED_PREFIXES.iter().any(|p| name.starts_with(p)))
        {
            return Ok(Some(format!(
                "calls {signature}, which reads the server rather than the contract's data"
            )));
        }
        if definer && owner != owner_role {
            return Ok(Some(format!(
                "calls {signature}, a SECURITY DEFINER function owned by {owner}: it reads with its owner's rights, not the contract owner's"
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_rule_trees() {
        let tree = "({QUERY :rowMarks <> :targetList ({TARGETENTRY :expr {FUNCEXPR :funcid 871 :args ({VAR :varno 1 :varattno 2 })} } {TARGETENTRY :expr {OPEXPR :opno 96 :opfuncid 65 }} {ROWCOMPAREEXPR :opnos (o 97 664) :opfamilies (o 1976)})})";
        let f = scan(tree);
        assert_eq!(f.functions, [871, 65]);
        assert_eq!(f.operators, [96, 97, 664]);
        assert!(!f.whole_row && !f.row_marks);
        let f = scan(
            "({QUERY :rowMarks ({ROWMARKCLAUSE :rti 1}) :x {VAR :varno 1 :varattno 0 :vartype 16400}})",
        );
        assert!(f.whole_row && f.row_marks);
        assert!(!scan("{VAR :varno 1 :varattno 10 }").whole_row);
    }
}
