//! SQL that runs inside the database: the bodies of functions and
//! procedures, which PostgreSQL stores and runs with no client sending a
//! statement. SQL bodies (quoted, or `BEGIN ATOMIC`) are parsed like any
//! statement; PL/pgSQL through libpg_query's own PL/pgSQL parser, whose
//! embedded statements and expressions are analysed one by one. Dynamic
//! SQL (`EXECUTE`) and other languages cannot be seen into and are marked
//! opaque.

use crate::access::RelationAccess;
use crate::lookup::SchemaLookup;

/// What a function body reads and writes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BodyAnalysis {
    pub accesses: Vec<RelationAccess>,
    /// Why part of it could not be seen into.
    pub opaque: Option<String>,
}

impl BodyAnalysis {
    fn merge(&mut self, accesses: Vec<RelationAccess>) {
        for a in accesses {
            match self.accesses.iter_mut().find(|x| x.relation == a.relation) {
                Some(x) => x.merge(&a),
                None => self.accesses.push(a),
            }
        }
    }
}

/// The body of a function in `language`; `definition` is the whole
/// `CREATE FUNCTION` statement, which PL/pgSQL's parser needs.
pub fn analyze_body(
    language: &str,
    body: &str,
    definition: &str,
    lookup: &dyn SchemaLookup,
) -> BodyAnalysis {
    let mut out = BodyAnalysis::default();
    match language.to_ascii_lowercase().as_str() {
        "sql" => match crate::analyze(body, lookup) {
            Ok(a) => {
                out.opaque = a.statements.iter().find_map(|s| s.opaque.clone());
                out.merge(a.combined());
            }
            Err(e) => out.opaque = Some(format!("its SQL body does not parse: {}", e.message)),
        },
        "plpgsql" => match plpgsql_queries(definition) {
            Ok((queries, dynamic)) => {
                for q in queries {
                    out.merge(query_accesses(&q, lookup));
                }
                if dynamic {
                    out.opaque = Some("its PL/pgSQL builds SQL at run time (EXECUTE)".into());
                }
            }
            Err(e) => out.opaque = Some(format!("its PL/pgSQL does not parse: {e}")),
        },
        other => out.opaque = Some(format!("it is written in {other}, which deed cannot read")),
    }
    out
}

/// A PL/pgSQL query: a whole statement (`INSERT …`), or an expression
/// (`x > 0`, `(SELECT max(id) FROM t)`), which reads like `SELECT x > 0`.
fn query_accesses(query: &str, lookup: &dyn SchemaLookup) -> Vec<RelationAccess> {
    if let Ok(a) = crate::analyze(query, lookup) {
        return a.combined();
    }
    crate::analyze(&format!("SELECT {query}"), lookup).map(|a| a.combined()).unwrap_or_default()
}

/// Every SQL text embedded in a PL/pgSQL function, and whether it also
/// runs dynamic SQL. libpg_query describes the function as JSON, which is
/// not always well-formed (trigger functions' special variables come out as
/// stray braces), so the texts are read from it by their key rather than
/// by parsing the whole document.
pub fn plpgsql_queries(definition: &str) -> Result<(Vec<String>, bool), String> {
    let json = crate::ffi::plpgsql_json(definition)?;
    let mut queries = Vec::new();
    let mut rest = json.as_str();
    while let Some(i) = rest.find("\"query\":") {
        rest = &rest[i + 8..];
        // The value is a JSON string: read exactly that token.
        let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
        if let Some(Ok(q)) = de.next() {
            queries.push(q);
            rest = &rest[de.byte_offset()..];
        }
    }
    let dynamic = ["PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors", "\"dynquery\""]
        .iter()
        .any(|k| json.contains(k));
    Ok((queries, dynamic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OfflineLookup;

    fn names(b: &BodyAnalysis) -> Vec<String> {
        let mut v: Vec<String> = b
            .accesses
            .iter()
            .map(|a| {
                format!(
                    "{} {}{}",
                    a.relation,
                    if a.read { "R" } else { "" },
                    if a.write { "W" } else { "" }
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn reads_plpgsql_bodies() {
        let def = "CREATE FUNCTION f(p int) RETURNS void LANGUAGE plpgsql AS $$
            DECLARE n int;
            BEGIN
              SELECT count(*) INTO n FROM orders WHERE user_id = p;
              IF n > (SELECT max_orders FROM limits) THEN
                INSERT INTO audit_log (msg) VALUES ('too many');
              END IF;
              UPDATE users SET order_count = n WHERE id = p;
            END $$";
        let body = def.split("$$").nth(1).unwrap();
        let b = analyze_body("plpgsql", body, def, &OfflineLookup::default());
        assert_eq!(
            names(&b),
            ["public.audit_log W", "public.limits R", "public.orders R", "public.users RW"]
        );
        assert!(b.opaque.is_none());
        let dynamic = "CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DELETE FROM ' || 'x'; END $$";
        let b = analyze_body("plpgsql", "", dynamic, &OfflineLookup::default());
        assert!(b.opaque.unwrap().contains("EXECUTE"));
    }
}
