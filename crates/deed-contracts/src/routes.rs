//! Routes to an owned relation's rows that bypass its grants: views that
//! read it (a view reads with its owner's rights, so its readers see what
//! the view's owner sees) and functions that run with their owner's
//! rights (`SECURITY DEFINER`), or sit in an api schema, where PostgreSQL
//! lets everyone execute them by default.

use std::collections::BTreeSet;

use deed_ident::QualifiedName;
use deed_pg::{Client, PgError};

use crate::desired::Desired;
use crate::error::ContractError;
use crate::naming::CONTRACT_MARKER;

/// A view (not a contract view) that reads an owned relation directly.
#[derive(Debug, Clone)]
pub struct ViewRoute {
    pub view: QualifiedName,
    pub owner: String,
    /// The owned relation (or partition of one) it reads.
    pub reads: QualifiedName,
    /// Who may read the view: grantees of SELECT other than its owner,
    /// `None` for PUBLIC.
    pub readers: Vec<Option<String>>,
}

/// A function that runs with its owner's rights, or lives in an api schema.
#[derive(Debug, Clone)]
pub struct FunctionRoute {
    /// `schema.name(argument types)`, as `regprocedure` prints it: usable
    /// as is in `REVOKE … ON FUNCTION`.
    pub signature: String,
    pub schema: String,
    pub owner: String,
    pub security_definer: bool,
    /// Who may execute it besides its owner, `None` for PUBLIC.
    pub executors: Vec<Option<String>>,
    /// The body's text (the source, or the SQL body of `BEGIN ATOMIC`).
    pub body: String,
}

#[derive(Debug, Clone, Default)]
pub struct RoutesLive {
    pub views: Vec<ViewRoute>,
    pub functions: Vec<FunctionRoute>,
}

fn q(context: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError + '_ {
    move |e| PgError::query(context, e)
}

fn grantee(name: Option<String>) -> Option<String> {
    name.filter(|n| n != "PUBLIC")
}

impl RoutesLive {
    pub async fn load(client: &Client, desired: &Desired) -> Result<RoutesLive, ContractError> {
        let mut live = RoutesLive::default();
        let owned: Vec<String> = desired.relations.iter().map(|r| r.relation.quoted()).collect();
        if !owned.is_empty() {
            for row in client
                .query(
                    "WITH RECURSIVE owned AS (
                         SELECT to_regclass(x) AS oid FROM unnest($1::text[]) x
                         UNION SELECT i.inhrelid FROM pg_inherits i JOIN owned o ON i.inhparent = o.oid
                     )
                     SELECT DISTINCT vn.nspname::text, v.relname::text, pg_get_userbyid(v.relowner)::text,
                            tn.nspname::text, t.relname::text,
                            array(SELECT coalesce(g.rolname::text, 'PUBLIC')
                                    FROM aclexplode(coalesce(v.relacl, acldefault('r', v.relowner))) a
                                    LEFT JOIN pg_roles g ON g.oid = a.grantee
                                   WHERE a.privilege_type = 'SELECT' AND a.grantee <> v.relowner)
                       FROM pg_rewrite r
                       JOIN pg_class v ON v.oid = r.ev_class
                       JOIN pg_namespace vn ON vn.oid = v.relnamespace
                       JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                                       AND d.refclassid = 'pg_class'::regclass
                       JOIN pg_class t ON t.oid = d.refobjid
                       JOIN pg_namespace tn ON tn.oid = t.relnamespace
                      WHERE v.relkind IN ('v', 'm') AND t.oid <> v.oid
                        AND t.oid IN (SELECT oid FROM owned)
                        AND NOT starts_with(coalesce(obj_description(v.oid, 'pg_class'), ''), $2)
                      ORDER BY 1, 2, 4, 5",
                    &[&owned, &CONTRACT_MARKER],
                )
                .await
                .map_err(q("reading views over owned relations"))?
            {
                let (Ok(view), Ok(reads)) = (
                    QualifiedName::from_catalog(row.get(0), row.get(1)),
                    QualifiedName::from_catalog(row.get(3), row.get(4)),
                ) else {
                    continue;
                };
                let readers: Vec<String> = row.get(5);
                live.views.push(ViewRoute {
                    view,
                    owner: row.get(2),
                    reads,
                    readers: readers.into_iter().map(Some).map(grantee).collect(),
                });
            }
        }
        let api_schemas: Vec<String> =
            desired.schemas.iter().map(|s| s.schema.as_str().to_string()).collect();
        for row in client
            .query(
                "SELECT p.oid::regprocedure::text, n.nspname::text, pg_get_userbyid(p.proowner)::text,
                        p.prosecdef,
                        array(SELECT coalesce(g.rolname::text, 'PUBLIC')
                                FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                LEFT JOIN pg_roles g ON g.oid = a.grantee
                               WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner),
                        CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid)
                             ELSE coalesce(p.prosrc, '') END
                   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND n.nspname <> 'deed'
                    AND (p.prosecdef OR n.nspname = ANY($1))
                    AND NOT EXISTS (SELECT 1 FROM pg_depend e
                                     WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid
                                       AND e.deptype = 'e')
                  ORDER BY 1",
                &[&api_schemas],
            )
            .await
            .map_err(q("reading functions that run with their owner's rights"))?
        {
            let executors: Vec<String> = row.get(4);
            live.functions.push(FunctionRoute {
                signature: row.get(0),
                schema: row.get(1),
                owner: row.get(2),
                security_definer: row.get(3),
                executors: executors.into_iter().map(Some).map(grantee).collect(),
                body: row.get(5),
            });
        }
        Ok(live)
    }
}

impl FunctionRoute {
    /// The relations among `candidates` whose name the body mentions as a
    /// word (case-insensitively): what a definer function may read.
    pub fn mentions<'a>(
        &self,
        candidates: impl Iterator<Item = &'a QualifiedName>,
    ) -> BTreeSet<QualifiedName> {
        let body = self.body.to_lowercase();
        candidates
            .filter(|r| {
                let name = r.name.as_str().to_lowercase();
                body.match_indices(&name).any(|(i, _)| {
                    let before = body[..i].chars().next_back();
                    let after = body[i + name.len()..].chars().next();
                    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !word(before) && !word(after)
                })
            })
            .cloned()
            .collect()
    }
}
