//! `deed cutover S.P [--rollback]`: once a projection is proven equal to
//! the contract version it replaces, the consumer's read of that version
//! is revoked and taken out of deed.toml in one step; `--rollback` puts
//! both back.

mod check;

use deed_ident::{Ident, QualifiedName};
use deed_manifest::edit::{Edit, Edited};
use deed_manifest::{ContractRef, Manifest};
use deed_pg::Client;

pub use check::{Conditions, check};

use crate::error::{CompareError, query};

/// The read a projection replaces, resolved from the manifest.
#[derive(Debug, Clone)]
pub struct Cutover {
    pub service: String,
    pub projection: String,
    pub replaces: ContractRef,
    pub view: QualifiedName,
    /// The role that holds the service's reads (its owner role).
    pub reader: Ident,
    /// Whether the manifest still lists the read.
    pub reading: bool,
}

/// Resolves `service.projection` for a cutover.
pub fn resolve(manifest: &Manifest, reference: &str) -> Result<Cutover, CompareError> {
    let (service, name) = reference.split_once('.').ok_or_else(|| {
        CompareError::Setup(format!(
            "{reference:?}: write <service>.<projection>, e.g. orders.products"
        ))
    })?;
    let s = manifest
        .service(service)
        .ok_or_else(|| CompareError::Setup(format!("the manifest has no service {service:?}")))?;
    let p = s.projection(name).ok_or_else(|| {
        CompareError::Setup(format!("service {service} has no projection {name:?}"))
    })?;
    let replaces = p.replaces.clone().ok_or_else(|| {
        CompareError::Setup(format!(
            "{}: projection {reference} replaces no contract read; add replaces = \"<owner>.<contract>.v<N>\" to cut one over",
            p.location
        ))
    })?;
    let (owner, contract) =
        manifest.contract(&replaces).expect("the manifest checks what a projection replaces");
    Ok(Cutover {
        service: service.to_string(),
        projection: name.to_string(),
        view: contract.view_name(&owner.api_schema),
        reading: s.reads.contains(&replaces),
        replaces,
        reader: deed_contracts::owner_role(service),
    })
}

/// The manifest after the cutover (or its rollback), edited in place and
/// validated; `lookup` resolves `${VAR}` as the manifest was read.
pub fn edited(
    manifest: &Manifest,
    c: &Cutover,
    rollback: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Edited, CompareError> {
    let setup = |e: deed_manifest::edit::EditError| CompareError::Setup(e.to_string());
    let mut edit = Edit::of(manifest).map_err(setup)?;
    if rollback {
        edit.add_read(&c.service, &c.replaces).map_err(setup)?;
    } else {
        edit.remove_read(&c.service, &c.replaces).map_err(setup)?;
    }
    edit.finish(lookup).map_err(setup)
}

/// The statements that revoke (or grant back) exactly the replaced read,
/// leaving the database as `after` (the edited manifest) says: the api
/// schema's USAGE goes with the last view the service reads there, and
/// comes back with the read.
pub fn statements(
    c: &Cutover,
    after: &Manifest,
    rollback: bool,
) -> Result<Vec<String>, CompareError> {
    let desired = deed_contracts::Desired::from_manifest(after, deed_manifest::Date::today())
        .map_err(|e| CompareError::Setup(format!("the edited manifest: {e}")))?;
    let schema = &c.view.schema;
    let usage = desired.schemas.iter().any(|s| s.schema == *schema && s.usage.contains(&c.reader));
    let (view, reader, schema) = (c.view.quoted(), c.reader.quoted(), schema.quoted());
    Ok(if rollback {
        let mut out = Vec::new();
        if usage {
            out.push(format!("GRANT USAGE ON SCHEMA {schema} TO {reader}"));
        }
        out.push(format!("GRANT SELECT ON {view} TO {reader}"));
        out
    } else {
        let mut out = vec![format!("REVOKE SELECT ON {view} FROM {reader}")];
        if !usage {
            out.push(format!("REVOKE USAGE ON SCHEMA {schema} FROM {reader}"));
        }
        out
    })
}

/// Runs `statements` in one transaction under deed's advisory lock, and
/// `write` (the manifest) inside it: if writing fails nothing is revoked,
/// and if the commit fails `undo` restores the manifest.
pub async fn execute(
    client: &mut Client,
    statements: &[String],
    write: impl FnOnce() -> std::io::Result<()>,
    undo: impl FnOnce() -> std::io::Result<()>,
) -> Result<(), CompareError> {
    let tx = client.transaction().await.map_err(query("starting the cutover"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await
        .map_err(query("taking deed's lock"))?;
    tx.batch_execute("SET LOCAL lock_timeout = '5s'")
        .await
        .map_err(query("setting lock_timeout"))?;
    for statement in statements {
        tx.batch_execute(statement).await.map_err(query("changing the read"))?;
    }
    write().map_err(|e| {
        CompareError::Setup(format!("cannot write the manifest: {e}; nothing was changed"))
    })?;
    if let Err(e) = tx.commit().await {
        let restored = undo();
        return Err(CompareError::Setup(format!(
            "the database refused the cutover ({e}); the manifest {}",
            match restored {
                Ok(()) => "was restored".to_string(),
                Err(u) => format!("could NOT be restored ({u}): put the read back by hand"),
            }
        )));
    }
    Ok(())
}
