//! From the manifest and the live catalog to the [`Model`]: each contract
//! view's columns with their types and nullability derived through the
//! view, each event's key and payload.

use deed_events::json_form;
use deed_ident::{Ident, QualifiedName};
use deed_manifest::{ContractRef, Manifest};
use deed_pg::Client;
use deed_sql::nullability;

use crate::catalog::{self, RawColumn, Types};
use crate::choose::Choice;
use crate::error::GenerateError;
use crate::model::{Column, ContractModel, EventModel, Model};

/// Reads what `choice` needs from the database `client` is connected to.
pub async fn observe(
    client: &Client,
    manifest: &Manifest,
    choice: &Choice,
) -> Result<Model, GenerateError> {
    let mut types = Types::default();
    let mut model = Model::default();
    for r in &choice.contracts {
        model.contracts.push(contract(client, manifest, r, &mut types).await?);
    }
    for r in &choice.events {
        let service = manifest.service(&r.service);
        let event = service.and_then(|s| s.event(&r.event)).ok_or_else(|| {
            GenerateError::Setup(format!("no event {}.{} in the manifest", r.service, r.event))
        })?;
        let mut out = EventModel {
            service: r.service.clone(),
            name: r.event.clone(),
            description: event.description.clone(),
            contract: None,
            key: Vec::new(),
            payload: Vec::new(),
        };
        if let (Some(key), Some(from)) = (&event.contract, &event.from) {
            let reference = ContractRef {
                service: r.service.clone(),
                contract: key.contract.clone(),
                version: key.version,
            };
            // A contract also chosen for itself was read already.
            let view = match model.contracts.iter().find(|c| c.reference() == reference.to_string())
            {
                Some(c) => c.clone(),
                None => contract(client, manifest, &reference, &mut types).await?,
            };
            // The relay writes the table's row, not the view's: types and
            // NOT NULL come from the table, column by column.
            let table = relation(client, &from.quoted(), &mut types).await?;
            let of_table = |name: &str| table.iter().find(|(c, _)| c.name == name);
            out.key = event
                .key
                .iter()
                .filter_map(|k| of_table(k.as_str()))
                .map(|(c, t)| column(c, t, true, "the event's key".into()))
                .collect();
            out.payload = view
                .columns
                .iter()
                .map(|v| match of_table(&v.name) {
                    Some((c, t)) => {
                        let why = if c.not_null {
                            format!("{}.{} is NOT NULL", from.name.as_str(), c.name)
                        } else {
                            format!("{}.{} may be NULL", from.name.as_str(), c.name)
                        };
                        column(c, t, c.not_null, why)
                    }
                    None => v.clone(),
                })
                .collect();
            out.contract = Some(view.reference());
        }
        model.events.push(out);
    }
    Ok(model)
}

fn column(raw: &RawColumn, ty: &crate::model::PgType, not_null: bool, why: String) -> Column {
    Column { name: raw.name.clone(), ty: ty.clone(), json: json_form(raw.type_oid), not_null, why }
}

/// A relation's columns with their resolved types; an error naming it
/// when it is missing.
async fn relation(
    client: &Client,
    name: &str,
    types: &mut Types,
) -> Result<Vec<(RawColumn, crate::model::PgType)>, GenerateError> {
    let raw = catalog::columns(client, name).await?.ok_or_else(|| {
        GenerateError::Setup(format!(
            "{name} does not exist in the database: run `deed apply` first"
        ))
    })?;
    let oids: Vec<u32> = raw.iter().map(|c| c.type_oid).collect();
    types.load(client, &oids).await?;
    Ok(raw
        .into_iter()
        .map(|c| {
            let t = types.resolve(c.type_oid, &c.sql);
            (c, t)
        })
        .collect())
}

async fn contract(
    client: &Client,
    manifest: &Manifest,
    r: &ContractRef,
    types: &mut Types,
) -> Result<ContractModel, GenerateError> {
    let (service, c) = manifest
        .contract(r)
        .ok_or_else(|| GenerateError::Setup(format!("no contract {r} in the manifest")))?;
    let view = c.view_name(&service.api_schema);
    let shown = view.quoted();
    let columns = relation(client, &shown, types).await.map_err(|e| match e {
        GenerateError::Setup(_) => GenerateError::Setup(format!(
            "the view {shown} of contract {r} does not exist: run `deed apply` first"
        )),
        other => other,
    })?;
    // Matched by position: only a derivation of every column counts.
    let derived = derive(client, &shown).await?.filter(|d| d.len() == columns.len());
    let columns: Vec<Column> = columns
        .iter()
        .enumerate()
        .map(|(i, (raw, ty))| {
            let d =
                derived.as_ref().and_then(|d| d.get(i)).cloned().unwrap_or(nullability::Derived {
                    not_null: false,
                    why: "deed cannot trace this view's columns to their tables".into(),
                });
            if !d.not_null && c.not_null.iter().any(|n| n.as_str() == raw.name) {
                let why = format!(
                    "NOT NULL as the manifest states (not_null; {}), checked against the data at each apply",
                    d.why
                );
                return column(raw, ty, true, why);
            }
            column(raw, ty, d.not_null, d.why)
        })
        .collect();
    let key = catalog::primary_key(client, &c.from.quoted()).await?;
    let identity = if !key.is_empty() && key.iter().all(|k| columns.iter().any(|c| &c.name == k)) {
        key
    } else {
        Vec::new()
    };
    Ok(ContractModel {
        service: service.name.clone(),
        name: c.name.clone(),
        version: c.version,
        schema: view.schema.as_str().to_string(),
        view: view.name.as_str().to_string(),
        description: c.description.clone(),
        columns,
        identity,
    })
}

/// Each output column of the view, NOT NULL or not: from its definition
/// and the NOT NULL constraints of the tables it reads. `None` when the
/// definition cannot be followed.
async fn derive(
    client: &Client,
    view: &str,
) -> Result<Option<Vec<nullability::Derived>>, GenerateError> {
    let definition = catalog::view_definition(client, view).await?;
    let Ok(tables) = nullability::tables(&definition) else { return Ok(None) };
    let mut known = Vec::new();
    for (schema, name) in tables {
        let written = match &schema {
            Some(s) => QualifiedName::from_catalog(s, &name).map(|q| q.quoted()),
            None => Ident::new(name.as_str()).map(|i| i.quoted()),
        };
        let Ok(written) = written else { continue };
        if let Some(cols) = catalog::columns(client, &written).await? {
            let cols: Vec<(String, bool)> =
                cols.into_iter().map(|c| (c.name, c.not_null)).collect();
            known.push((schema, name, cols));
        }
    }
    let lookup = |schema: Option<&str>, name: &str| {
        known
            .iter()
            .find(|(s, n, _)| s.as_deref() == schema && n == name)
            .map(|(_, _, cols)| cols.clone())
    };
    Ok(nullability::derive(&definition, &lookup).ok().flatten())
}
