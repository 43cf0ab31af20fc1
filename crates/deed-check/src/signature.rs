//! What a contract version looks like from the outside: its columns with
//! their types, its definition, and the columns beneath the exposed ones.

use deed_ident::QualifiedName;
use deed_pg::{Client, PgError};

/// A column of an owned table that a contract exposes, by identity (table
/// OID and attribute number), so renames and drops can be followed.
#[derive(Debug, Clone)]
pub(crate) struct Exposed {
    pub view_column: String,
    pub table: u32,
    pub attnum: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Underlying {
    pub table: Option<String>,
    pub name: Option<String>,
    pub not_null: bool,
    pub dropped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signature {
    pub exists: bool,
    pub viewdef: Option<String>,
    /// (name, type with typmod) in order.
    pub columns: Vec<(String, String)>,
    pub underlying: Vec<Underlying>,
}

/// Signatures of every view (by quoted name) and of their exposed
/// columns, in two queries.
pub(crate) async fn signatures(
    client: &Client,
    views: &[QualifiedName],
    exposed: &[Vec<Exposed>],
) -> Result<Vec<Signature>, PgError> {
    let names: Vec<String> = views.iter().map(QualifiedName::quoted).collect();
    let rows = client
        .query(
            "SELECT t.ord::int, c.oid IS NOT NULL, pg_get_viewdef(c.oid),
                    coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum > 0), '{}'),
                    coalesce(array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) FILTER (WHERE a.attnum > 0), '{}')
               FROM unnest($1::text[]) WITH ORDINALITY AS t(name, ord)
               LEFT JOIN pg_class c ON c.oid = to_regclass(t.name) AND c.relkind = 'v'
               LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
              GROUP BY t.ord, c.oid
              ORDER BY t.ord",
            &[&names],
        )
        .await
        .map_err(|e| PgError::query("reading contract view signatures", e))?;
    let mut out: Vec<Signature> = rows
        .iter()
        .map(|r| {
            let names: Vec<String> = r.get(3);
            let types: Vec<String> = r.get(4);
            Signature {
                exists: r.get(1),
                viewdef: r.get(2),
                columns: names.into_iter().zip(types).collect(),
                underlying: Vec::new(),
            }
        })
        .collect();
    let (mut owners, mut tables, mut attnums) = (Vec::new(), Vec::new(), Vec::new());
    for (i, list) in exposed.iter().enumerate() {
        for e in list {
            owners.push(i as i32);
            tables.push(e.table);
            attnums.push(e.attnum);
        }
    }
    if owners.is_empty() {
        return Ok(out);
    }
    let rows = client
        .query(
            "SELECT x.owner, quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname::text,
                    coalesce(a.attnotnull, false), coalesce(a.attisdropped, true)
               FROM unnest($1::int[], $2::oid[], $3::int2[]) WITH ORDINALITY AS x(owner, relid, attnum, ord)
               LEFT JOIN pg_class c ON c.oid = x.relid
               LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attribute a ON a.attrelid = x.relid AND a.attnum = x.attnum
              ORDER BY x.ord",
            &[&owners, &tables, &attnums],
        )
        .await
        .map_err(|e| PgError::query("reading the columns beneath contract views", e))?;
    for r in rows {
        let owner: i32 = r.get(0);
        out[owner as usize].underlying.push(Underlying {
            table: r.get(1),
            name: r.get(2),
            not_null: r.get(3),
            dropped: r.get(4),
        });
    }
    Ok(out)
}
