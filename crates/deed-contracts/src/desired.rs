//! What the database should look like, computed from the manifest alone.

use std::collections::{BTreeMap, BTreeSet};

use deed_ident::{Ident, QualifiedName};
use deed_manifest::{ContractRef, ContractShape, Date, Exception, Manifest, Privilege};
use deed_sql::OfflineLookup;
use serde::Serialize;

use crate::error::ContractError;
use crate::naming::{CONTRACT_MARKER, owner_role};

/// A service's owner role and the logins that are its members.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRoles {
    pub service: String,
    pub owner: Ident,
    pub logins: Vec<Ident>,
    /// Where the manifest names each login.
    pub login_locations: BTreeMap<Ident, String>,
    /// Where the service is declared.
    pub location: String,
}

/// A service's api schema and who may use it.
#[derive(Debug, Clone, Serialize)]
pub struct ApiSchema {
    pub service: String,
    pub schema: Ident,
    pub owner: Ident,
    /// Owner roles of the services that read a contract in it.
    pub usage: BTreeSet<Ident>,
    /// Where the manifest names it (or the service, for the default name).
    pub location: String,
}

/// A relation a service owns, and the only grants others may hold on it.
#[derive(Debug, Clone, Serialize)]
pub struct OwnedRelation {
    pub service: String,
    pub relation: QualifiedName,
    pub owner: Ident,
    /// From active transitional exceptions: grantee → privileges.
    pub grants: BTreeMap<Ident, BTreeSet<Privilege>>,
    /// Where the manifest's `owns` names it.
    pub location: String,
}

/// One published contract version.
#[derive(Debug, Clone, Serialize)]
pub struct ContractView {
    pub service: String,
    pub contract: ContractRef,
    pub view: QualifiedName,
    pub owner: Ident,
    /// The view's query: for listed columns every identifier quoted and
    /// qualified; for a hand-written query, the owner's text.
    pub select: String,
    /// For a hand-written query, the schemas its unqualified names resolve
    /// through while the view is created (as a SQL list).
    pub search_path: Option<String>,
    /// Owner roles of the services whose `reads` list this version.
    pub readers: BTreeSet<Ident>,
    pub comment: String,
    /// Columns the owner states are never NULL (`not_null`), checked
    /// against the data at apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_null: Vec<Ident>,
    /// Where the manifest defines it.
    pub location: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    pub services: Vec<ServiceRoles>,
    pub schemas: Vec<ApiSchema>,
    pub relations: Vec<OwnedRelation>,
    pub views: Vec<ContractView>,
    /// Exceptions in force, and ones whose date has passed (their grants
    /// are revoked like any other).
    pub exceptions: Vec<Exception>,
    pub expired: Vec<Exception>,
    /// What change capture needs (rung 2).
    pub capture: deed_capture::CaptureDesired,
}

impl ContractView {
    /// The statements that create this view's query under `head` (`CREATE
    /// VIEW name …`, or a temporary stand-in), inside a transaction: a
    /// hand-written query is resolved through the manifest's search path,
    /// and deed's own path is back in force right after (and the session's
    /// own at the end of the transaction). Each is one statement, to be
    /// sent alone.
    pub fn create_statements(&self, head: &str) -> Vec<String> {
        let create = format!("{head} AS {}", self.select);
        match &self.search_path {
            None => vec![create],
            Some(path) => vec![
                format!("SET LOCAL search_path = {path}"),
                create,
                format!("SET LOCAL search_path = {}", deed_pg::session::SEARCH_PATH),
            ],
        }
    }
}

impl Desired {
    pub fn from_manifest(m: &Manifest, today: Date) -> Result<Desired, ContractError> {
        let source = m
            .source
            .path()
            .file_name()
            .map_or("deed.toml".into(), |f| f.to_string_lossy().into_owned());
        let services: Vec<ServiceRoles> = m
            .services
            .iter()
            .map(|s| ServiceRoles {
                location: s.location.to_string(),
                service: s.name.clone(),
                owner: owner_role(&s.name),
                logins: s.logins.clone(),
                login_locations: s
                    .logins
                    .iter()
                    .map(|l| (l.clone(), s.login_location(l.as_str()).to_string()))
                    .collect(),
            })
            .collect();
        let (exceptions, expired): (Vec<Exception>, Vec<Exception>) =
            m.exceptions().cloned().partition(|e| e.is_active(today));
        let mut views = Vec::new();
        for s in &m.services {
            for c in &s.contracts {
                let reference = c.reference(&s.name);
                let readers: BTreeSet<Ident> = m
                    .services
                    .iter()
                    .filter(|r| r.reads.contains(&reference))
                    .map(|r| owner_role(&r.name))
                    .collect();
                let (select, search_path) = match &c.shape {
                    ContractShape::Columns(cols) => (
                        format!(
                            "SELECT {} FROM {}",
                            cols.iter().map(|c| c.quoted()).collect::<Vec<_>>().join(", "),
                            c.from.quoted()
                        ),
                        None,
                    ),
                    ContractShape::Query(q) => (
                        checked_query(q, s, m, &c.location.to_string())?,
                        Some(
                            m.database
                                .search_path
                                .iter()
                                .map(Ident::quoted)
                                .collect::<Vec<_>>()
                                .join(", "),
                        ),
                    ),
                };
                views.push(ContractView {
                    service: s.name.clone(),
                    view: c.view_name(&s.api_schema),
                    owner: owner_role(&s.name),
                    select,
                    search_path,
                    readers,
                    comment: format!(
                        "{CONTRACT_MARKER} {reference}; owner {}; source {source}",
                        s.name
                    ),
                    not_null: c.not_null.clone(),
                    location: c.location.to_string(),
                    contract: reference,
                });
            }
        }
        let schemas = m
            .services
            .iter()
            .filter(|s| !s.contracts.is_empty())
            .map(|s| ApiSchema {
                location: s.locations.api_schema.as_ref().unwrap_or(&s.location).to_string(),
                service: s.name.clone(),
                schema: s.api_schema.clone(),
                owner: owner_role(&s.name),
                usage: views
                    .iter()
                    .filter(|v| v.service == s.name)
                    .flat_map(|v| v.readers.iter().cloned())
                    .collect(),
            })
            .collect();
        let relations = m
            .services
            .iter()
            .flat_map(|s| s.owns.iter().map(move |r| (s, r)))
            .map(|(s, relation)| {
                let mut grants: BTreeMap<Ident, BTreeSet<Privilege>> = BTreeMap::new();
                for e in exceptions.iter().filter(|e| e.relation == *relation) {
                    grants
                        .entry(owner_role(&e.service))
                        .or_default()
                        .extend(e.privileges.iter().copied());
                }
                OwnedRelation {
                    service: s.name.clone(),
                    relation: relation.clone(),
                    owner: owner_role(&s.name),
                    grants,
                    location: s.owns_location(relation).to_string(),
                }
            })
            .collect();
        let capture = deed_capture::CaptureDesired::from_manifest(m);
        Ok(Desired { services, schemas, relations, views, exceptions, expired, capture })
    }

    pub fn relation(&self, name: &QualifiedName) -> Option<&OwnedRelation> {
        self.relations.iter().find(|r| r.relation == *name)
    }

    pub fn view(&self, name: &QualifiedName) -> Option<&ContractView> {
        self.views.iter().find(|v| v.view == *name)
    }

    /// The service whose owner role this is.
    pub fn service_of_owner(&self, role: &str) -> Option<&ServiceRoles> {
        self.services.iter().find(|s| s.owner.as_str() == role)
    }
}

/// A hand-written contract query: one SELECT over relations the service
/// owns, never `*`. PostgreSQL's parser decides.
fn checked_query(
    query: &str,
    s: &deed_manifest::Service,
    m: &Manifest,
    at: &str,
) -> Result<String, ContractError> {
    let fail = |message: String| ContractError::Manifest { location: at.to_string(), message };
    let lookup = OfflineLookup { search_path: m.database.search_path.clone() };
    let analysis = deed_sql::analyze(query, &lookup)
        .map_err(|e| fail(format!("the contract query does not parse: {}", e.message)))?;
    let [statement] = analysis.statements.as_slice() else {
        return Err(fail("a contract query is exactly one SELECT statement".into()));
    };
    if statement.command != "SELECT" {
        return Err(fail(format!("a contract query must be a SELECT, not {}", statement.command)));
    }
    for a in &statement.accesses {
        if a.star {
            return Err(fail(format!(
                "the contract query selects * from {}; a contract lists its columns explicitly",
                a.relation
            )));
        }
        if a.write {
            return Err(fail(format!("the contract query writes {}", a.relation)));
        }
        if !s.owns(&a.relation) {
            return Err(fail(format!(
                "the contract query reads {}, which {} does not own; a contract publishes only its owner's data",
                a.relation, s.name
            )));
        }
    }
    Ok(query.trim().trim_end_matches(';').to_string())
}
