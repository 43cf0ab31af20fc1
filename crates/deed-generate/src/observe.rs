//! From the manifest and the live catalog to the [`Model`]: each contract
//! view's columns with their types and nullability derived through the
//! view, each event's key and payload.
//!
//! The catalog is read in a fixed handful of queries whatever the number
//! of contracts (the views' columns and definitions, the tables those
//! definitions read, the primary keys, the types); the model is then
//! computed from what was read.

use std::collections::BTreeMap;

use deed_events::json_form;
use deed_ident::{Ident, QualifiedName};
use deed_manifest::{Contract, ContractRef, Event, EventRef, Manifest, Service};
use deed_pg::Client;
use deed_sql::nullability;

use crate::catalog::{RawColumn, Relations, Types};
use crate::choose::Choice;
use crate::error::GenerateError;
use crate::model::{Column, ContractModel, EventModel, Model};

/// A table a view's definition reads: as written there (schema when
/// qualified, name), and as SQL for the catalog.
struct Read {
    schema: Option<String>,
    name: String,
    sql: String,
}

/// One contract version to read: its manifest entry and view.
struct Wanted<'m> {
    reference: ContractRef,
    service: &'m Service,
    contract: &'m Contract,
    view: QualifiedName,
}

/// Reads what `choice` needs from the database `client` is connected to.
pub async fn observe(
    client: &Client,
    manifest: &Manifest,
    choice: &Choice,
) -> Result<Model, GenerateError> {
    // What is needed: the chosen versions, and each event's payload
    // version and table.
    let mut refs: Vec<ContractRef> = choice.contracts.clone();
    let mut events: Vec<(&EventRef, &Event)> = Vec::new();
    for r in &choice.events {
        let event =
            manifest.service(&r.service).and_then(|s| s.event(&r.event)).ok_or_else(|| {
                GenerateError::Setup(format!("no event {}.{} in the manifest", r.service, r.event))
            })?;
        if let Some(reference) = payload_contract(r, event) {
            if !refs.contains(&reference) {
                refs.push(reference);
            }
        }
        events.push((r, event));
    }
    let wanted: Vec<Wanted<'_>> = refs
        .iter()
        .map(|r| {
            let (service, contract) = manifest
                .contract(r)
                .ok_or_else(|| GenerateError::Setup(format!("no contract {r} in the manifest")))?;
            let view = contract.view_name(&service.api_schema);
            Ok(Wanted { reference: r.clone(), service, contract, view })
        })
        .collect::<Result<_, GenerateError>>()?;

    let mut rel = Relations::default();
    let views: Vec<String> = wanted.iter().map(|w| w.view.quoted()).collect();
    let event_tables: Vec<String> =
        events.iter().filter_map(|(_, e)| e.from.as_ref()).map(QualifiedName::quoted).collect();
    rel.load_columns(client, &[views.clone(), event_tables].concat()).await?;
    for (w, shown) in wanted.iter().zip(&views) {
        if !rel.columns.contains_key(shown) {
            return Err(GenerateError::Setup(format!(
                "the view {shown} of contract {} does not exist: run `deed apply` first",
                w.reference
            )));
        }
    }
    rel.load_definitions(client, &views).await?;
    // The tables each definition reads, as the catalog knows them.
    let mut reads: BTreeMap<String, Vec<Read>> = BTreeMap::new();
    for shown in &views {
        // A definition deed cannot parse reads nothing it knows: every
        // column is then nullable, saying so.
        let tables = nullability::tables(&rel.definitions[shown]).unwrap_or_default();
        let written = tables.into_iter().filter_map(|(schema, name)| {
            let sql = match &schema {
                Some(s) => QualifiedName::from_catalog(s, &name).map(|q| q.quoted()),
                None => Ident::new(name.as_str()).map(|i| i.quoted()),
            };
            sql.ok().map(|sql| Read { schema, name, sql })
        });
        reads.insert(shown.clone(), written.collect());
    }
    let read_tables: Vec<String> = reads.values().flatten().map(|r| r.sql.clone()).collect();
    rel.load_columns(client, &read_tables).await?;
    let sources: Vec<String> = wanted.iter().map(|w| w.contract.from.quoted()).collect();
    rel.load_keys(client, &sources).await?;
    let mut types = Types::default();
    let oids: Vec<u32> = rel.columns.values().flatten().map(|c| c.type_oid).collect();
    types.load(client, &oids).await?;

    let mut contracts: BTreeMap<String, ContractModel> = BTreeMap::new();
    for (w, shown) in wanted.iter().zip(&views) {
        let model = contract(w, &rel, &reads[shown.as_str()], shown, &types);
        contracts.insert(w.reference.to_string(), model);
    }
    let mut model = Model {
        contracts: choice.contracts.iter().map(|r| contracts[&r.to_string()].clone()).collect(),
        events: Vec::new(),
    };
    for (r, event) in events {
        model.events.push(event_model(r, event, &contracts, &rel, &types)?);
    }
    Ok(model)
}

/// A state event's payload version; none for a domain event.
fn payload_contract(r: &EventRef, event: &Event) -> Option<ContractRef> {
    let (key, _) = (event.contract.as_ref()?, event.from.as_ref()?);
    Some(ContractRef {
        service: r.service.clone(),
        contract: key.contract.clone(),
        version: key.version,
    })
}

fn column(raw: &RawColumn, types: &Types, not_null: bool, why: String) -> Column {
    Column {
        name: raw.name.clone(),
        ty: types.resolve(raw.type_oid, &raw.sql),
        json: json_form(raw.type_oid),
        not_null,
        why,
    }
}

fn contract(
    w: &Wanted<'_>,
    rel: &Relations,
    reads: &[Read],
    shown: &str,
    types: &Types,
) -> ContractModel {
    let raw = &rel.columns[shown];
    // Matched by position: only a derivation of every column counts.
    let derived = derive(&rel.definitions[shown], reads, rel).filter(|d| d.len() == raw.len());
    let columns: Vec<Column> = raw
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let d =
                derived.as_ref().and_then(|d| d.get(i)).cloned().unwrap_or(nullability::Derived {
                    not_null: false,
                    why: "deed cannot trace this view's columns to their tables".into(),
                });
            if !d.not_null && w.contract.not_null.iter().any(|n| n.as_str() == raw.name) {
                let why = format!(
                    "NOT NULL as the manifest states (not_null; {}), checked against the data at each apply",
                    d.why
                );
                return column(raw, types, true, why);
            }
            column(raw, types, d.not_null, d.why)
        })
        .collect();
    let key = rel.keys.get(&w.contract.from.quoted()).cloned().unwrap_or_default();
    let identity = if !key.is_empty() && key.iter().all(|k| columns.iter().any(|c| &c.name == k)) {
        key
    } else {
        Vec::new()
    };
    ContractModel {
        service: w.service.name.clone(),
        name: w.contract.name.clone(),
        version: w.contract.version,
        schema: w.view.schema.as_str().to_string(),
        view: w.view.name.as_str().to_string(),
        description: w.contract.description.clone(),
        columns,
        identity,
    }
}

/// Each output column of the view, NOT NULL or not: from its definition
/// and the NOT NULL constraints of the tables it reads. `None` when the
/// definition cannot be followed.
fn derive(definition: &str, reads: &[Read], rel: &Relations) -> Option<Vec<nullability::Derived>> {
    let lookup = |schema: Option<&str>, name: &str| {
        let read = reads.iter().find(|r| r.schema.as_deref() == schema && r.name == name)?;
        let columns = rel.columns.get(&read.sql)?;
        Some(columns.iter().map(|c| (c.name.clone(), c.not_null)).collect())
    };
    nullability::derive(definition, &lookup).ok().flatten()
}

/// One event: its envelope's key and payload from the table's columns
/// (the relay writes the table's row, not the view's), in the payload
/// version's order.
fn event_model(
    r: &EventRef,
    event: &Event,
    contracts: &BTreeMap<String, ContractModel>,
    rel: &Relations,
    types: &Types,
) -> Result<EventModel, GenerateError> {
    let mut out = EventModel {
        service: r.service.clone(),
        name: r.event.clone(),
        description: event.description.clone(),
        contract: None,
        key: Vec::new(),
        payload: Vec::new(),
    };
    let (Some(reference), Some(from)) = (payload_contract(r, event), &event.from) else {
        return Ok(out);
    };
    let view = &contracts[&reference.to_string()];
    let shown = from.quoted();
    let table = rel.columns.get(&shown).ok_or_else(|| {
        GenerateError::Setup(format!(
            "{shown}, the table of event {}.{}, does not exist: run `deed apply` first",
            r.service, r.event
        ))
    })?;
    let of_table = |name: &str| table.iter().find(|c| c.name == name);
    out.key = event
        .key
        .iter()
        .filter_map(|k| of_table(k.as_str()))
        .map(|c| column(c, types, true, "the event's key".into()))
        .collect();
    out.payload = view
        .columns
        .iter()
        .map(|v| match of_table(&v.name) {
            Some(c) => {
                let why = if c.not_null {
                    format!("{}.{} is NOT NULL", from.name.as_str(), c.name)
                } else {
                    format!("{}.{} may be NULL", from.name.as_str(), c.name)
                };
                column(c, types, c.not_null, why)
            }
            None => v.clone(),
        })
        .collect();
    out.contract = Some(view.reference());
    Ok(out)
}
