use std::collections::BTreeSet;

use deed_ident::quote_literal;

use super::{CaptureDesired, CaptureLive, EMIT_VERSION, emit_function_sql};
use deed_change::{Change, Phase};

pub(super) fn change(
    phase: Phase,
    kind: &'static str,
    object: &str,
    summary: String,
    drift: String,
    sql: Vec<String>,
) -> Change {
    Change {
        phase,
        kind,
        object: object.to_string(),
        summary,
        drift,
        sql,
        location: None,
        revokes: None,
    }
}

/// What a deed publication publishes: row changes (TRUNCATE is not an
/// event), and a partition's changes as its root table's, so an event is
/// the same whichever partition the row lives in, or moves to.
pub const PUBLISH: &str =
    "publish = 'insert, update, delete, truncate', publish_via_partition_root = true";

/// Changes that make capture match the manifest.
pub fn diff_capture(desired: &CaptureDesired, live: &CaptureLive, out: &mut Vec<Change>) {
    if !desired.is_empty() && live.wal_level != "logical" {
        out.push(change(
            Phase::Blocker,
            "wal-level",
            "wal_level",
            format!(
                "change capture needs wal_level = logical (it is {}): set it in postgresql.conf and restart the server",
                live.wal_level
            ),
            format!("wal_level is {}, not logical", live.wal_level),
            Vec::new(),
        ));
        return;
    }
    // A moved service's capture is in its own database now.
    let kept = CaptureDesired {
        services: desired
            .services
            .iter()
            .filter(|s| !live.moved.contains(&s.service))
            .cloned()
            .collect(),
    };
    let desired = &kept;
    publications(desired, live, out);
    super::event_contracts::event_contracts(desired, live, out);
    slots(desired, live, out);
    identities(desired, live, out);
    emit(desired, live, out);
    super::relay_login::relay_logins(desired, live, out);
}

fn publications(desired: &CaptureDesired, live: &CaptureLive, out: &mut Vec<Change>) {
    for s in &desired.services {
        let name = s.publication.as_str();
        let tables: BTreeSet<_> = s.tables.iter().cloned().collect();
        let list = s.tables.iter().map(|t| t.quoted()).collect::<Vec<_>>().join(", ");
        let shown = s.tables.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
        match live.publications.get(name) {
            None if tables.is_empty() => out.push(change(
                Phase::Capture,
                "create-publication",
                name,
                format!(
                    "create publication {name} (no tables yet: {} has only domain events)",
                    s.service
                ),
                format!("publication {name} is missing"),
                vec![format!("CREATE PUBLICATION {} WITH ({PUBLISH})", s.publication.quoted())],
            )),
            None => out.push(change(
                Phase::Capture,
                "create-publication",
                name,
                format!("create publication {name} for {shown}"),
                format!("publication {name} is missing"),
                vec![format!(
                    "CREATE PUBLICATION {} FOR TABLE {list} WITH ({PUBLISH})",
                    s.publication.quoted()
                )],
            )),
            Some((live_tables, publishes)) => {
                if *live_tables != tables {
                    let sql = if tables.is_empty() {
                        let current =
                            live_tables.iter().map(|t| t.quoted()).collect::<Vec<_>>().join(", ");
                        format!("ALTER PUBLICATION {} DROP TABLE {current}", s.publication.quoted())
                    } else {
                        format!("ALTER PUBLICATION {} SET TABLE {list}", s.publication.quoted())
                    };
                    out.push(change(
                        Phase::Capture,
                        "alter-publication",
                        name,
                        format!("publication {name} publishes exactly {}", if shown.is_empty() { "no table" } else { &shown }),
                        format!("publication {name} publishes other tables than the manifest's state events"),
                        vec![sql],
                    ));
                }
                if *publishes != [true, true, true, true, true] {
                    out.push(change(
                        Phase::Capture,
                        "alter-publication",
                        name,
                        format!("publication {name} publishes inserts, updates, deletes and truncates, as the partition root"),
                        format!("publication {name} publishes other operations, or partitions under their own names"),
                        vec![format!("ALTER PUBLICATION {} SET ({PUBLISH})", s.publication.quoted())],
                    ));
                }
            }
        }
    }
    for name in live.publications.keys() {
        if !desired.services.iter().any(|s| s.publication.as_str() == name) {
            out.push(change(
                Phase::Capture,
                "drop-publication",
                name,
                format!("drop publication {name}: its service has no events any more"),
                format!("publication {name} is not in the manifest"),
                vec![format!("DROP PUBLICATION {}", deed_ident::quote_ident(name))],
            ));
        }
    }
}

fn slots(desired: &CaptureDesired, live: &CaptureLive, out: &mut Vec<Change>) {
    let wanted: Vec<String> = desired.services.iter().map(|s| live.slot_for(&s.service)).collect();
    for slot in &wanted {
        match live.slots.get(slot) {
            None if !live.can_replicate => out.push(change(
                Phase::Blocker,
                "create-slot",
                slot,
                format!(
                    "replication slot {slot} is missing, and the role deed runs as may not create one: {}; then deed apply again",
                    match live.provider.and_then(|p| p.replication_role()) {
                        Some(role) => format!("grant it {role}: `GRANT {role} TO {}`", live.actor),
                        None => format!("as a superuser or the provider's admin, run `ALTER ROLE {} REPLICATION`", live.actor),
                    }
                ),
                format!("replication slot {slot} is missing"),
                Vec::new(),
            )),
            None => out.push(change(
                Phase::Slots,
                "create-slot",
                slot,
                format!("create logical replication slot {slot} (pgoutput): events are captured from here on"),
                format!("replication slot {slot} is missing"),
                vec![if live.failover_slots {
                    format!("SELECT pg_create_logical_replication_slot({}, 'pgoutput', false, false, true)", quote_literal(slot))
                } else {
                    format!("SELECT pg_create_logical_replication_slot({}, 'pgoutput')", quote_literal(slot))
                }],
            )),
            Some((plugin, _)) if plugin != "pgoutput" => out.push(change(
                Phase::Blocker,
                "slot-plugin",
                slot,
                format!("replication slot {slot} uses plugin {plugin}, not pgoutput; drop it or rename it"),
                format!("replication slot {slot} uses plugin {plugin}"),
                Vec::new(),
            )),
            Some(_) => {}
        }
    }
    for (name, (_, active)) in &live.slots {
        if wanted.contains(name) {
            continue;
        }
        let active_note =
            if *active { " (a relay is still reading it: stop it first)" } else { "" };
        out.push(change(
            Phase::DropSlots,
            "drop-slot",
            name,
            format!(
                "drop replication slot {name}: no service of the manifest captures into it any more, and events it still holds are discarded{active_note}"
            ),
            format!("replication slot {name} belongs to no service of the manifest (it keeps WAL on the server)"),
            vec![format!("SELECT pg_drop_replication_slot({})", quote_literal(name))],
        ));
    }
}

/// An update or delete must carry the event key in its old row, and an
/// unchanged out-of-line value must be recoverable from the old row: both
/// need replica identity full unless the key is the primary key and no
/// payload column can be stored out of line.
fn identities(desired: &CaptureDesired, live: &CaptureLive, out: &mut Vec<Change>) {
    for s in &desired.services {
        for table in &s.tables {
            let Some(current) = live.replica_identity.get(table) else { continue };
            let pk = live.primary_keys.get(table).cloned().unwrap_or_default();
            let key_is_pk = s.keys.iter().filter(|(t, _)| t == table).all(|(_, k)| {
                !pk.is_empty()
                    && k.len() == pk.len()
                    && k.iter().all(|c| pk.contains(&c.as_str().to_string()))
            });
            let varlena = live.varlena_columns.get(table).cloned().unwrap_or_default();
            let toastable = s
                .payload_columns
                .iter()
                .filter(|(t, _)| t == table)
                .any(|(_, cols)| cols.iter().any(|c| varlena.contains(c.as_str())));
            let needs_full = !key_is_pk || toastable;
            let want = if needs_full { 'f' } else { 'd' };
            let partitions_ok = live
                .children
                .get(table)
                .into_iter()
                .flatten()
                .all(|c| live.replica_identity.get(c) == Some(&'f'));
            if want == 'd' || (*current == 'f' && partitions_ok) {
                continue;
            }
            let why = if !key_is_pk {
                "the event key is not the primary key"
            } else {
                "a payload column can be stored out of line (TOAST)"
            };
            // Each partition logs its own rows' old values.
            let all = std::iter::once(table).chain(live.children.get(table).into_iter().flatten());
            for t in all.filter(|t| live.replica_identity.get(*t) != Some(&'f')) {
                out.push(change(
                    Phase::Capture,
                    "replica-identity",
                    &t.to_string(),
                    format!(
                        "set replica identity full on {t}: {why}, so the old row must be logged"
                    ),
                    format!("{t} does not log the old row its events need ({why})"),
                    vec![format!("ALTER TABLE {} REPLICA IDENTITY FULL", t.quoted())],
                ));
            }
        }
    }
}

fn emit(desired: &CaptureDesired, live: &CaptureLive, out: &mut Vec<Change>) {
    if desired.is_empty() {
        // Capture removed: its function and list go; the schema may hold
        // other things (an inbox) and stays.
        if live.emit_comment.is_some() {
            out.push(change(
                Phase::Capture,
                "drop-function",
                "deed.emit",
                "remove deed.emit and the domain event list: the manifest declares no events"
                    .into(),
                "deed.emit is installed but the manifest declares no events".into(),
                vec![
                    "DROP FUNCTION \"deed\".\"emit\"(text, text, jsonb)".into(),
                    "DROP TABLE IF EXISTS \"deed\".\"domain_events\"".into(),
                ],
            ));
        }
        return;
    }
    if !live.deed_schema {
        out.push(change(
            Phase::Capture,
            "create-schema",
            "deed",
            "create schema deed, for deed.emit and its list of domain events".into(),
            "schema deed is missing".into(),
            vec![
                "CREATE SCHEMA \"deed\"".into(),
                "REVOKE ALL ON SCHEMA \"deed\" FROM PUBLIC".into(),
                "CREATE TABLE \"deed\".\"domain_events\" (\"event\" text PRIMARY KEY, \"owner_role\" name NOT NULL)".into(),
            ],
        ));
    }
    if live.emit_comment.as_deref() != Some(EMIT_VERSION) {
        out.push(change(
            Phase::Capture,
            "create-function",
            "deed.emit",
            "install deed.emit(event, key, payload): a domain event, committed or rolled back with its transaction".into(),
            "deed.emit is missing or out of date".into(),
            emit_function_sql().into_iter().chain(["REVOKE ALL ON FUNCTION \"deed\".\"emit\"(text, text, jsonb) FROM PUBLIC".into()]).collect(),
        ));
    }
    let wanted: Vec<(String, String)> = desired
        .services
        .iter()
        .flat_map(|s| {
            s.domain_events.iter().map(move |e| (e.clone(), s.owner.as_str().to_string()))
        })
        .collect();
    for (event, owner) in &wanted {
        if live.domain_events.get(event) != Some(owner) {
            out.push(change(
                Phase::Capture,
                "domain-event",
                event,
                format!("register domain event {event}, emitted by {owner}"),
                format!("domain event {event} is not registered"),
                vec![format!(
                    "INSERT INTO \"deed\".\"domain_events\" VALUES ({}, {}) ON CONFLICT (\"event\") DO UPDATE SET \"owner_role\" = EXCLUDED.\"owner_role\"",
                    quote_literal(event),
                    quote_literal(owner)
                )],
            ));
        }
    }
    for event in live.domain_events.keys() {
        if !wanted.iter().any(|(e, _)| e == event) {
            out.push(change(
                Phase::Capture,
                "domain-event",
                event,
                format!("unregister domain event {event}: the manifest no longer declares it"),
                format!("domain event {event} is registered but not declared"),
                vec![format!(
                    "DELETE FROM \"deed\".\"domain_events\" WHERE \"event\" = {}",
                    quote_literal(event)
                )],
            ));
        }
    }
    // After a (re)install the function's grants start from nothing.
    let reinstalled = live.emit_comment.as_deref() != Some(EMIT_VERSION);
    let emitters = desired.emitters();
    for role in &emitters {
        if reinstalled || !live.emit_grantees.contains(role.as_str()) {
            out.push(change(
                Phase::Capture,
                "grant",
                "deed.emit",
                format!("grant EXECUTE on deed.emit to {role}"),
                format!("missing grant: EXECUTE on deed.emit to {role}"),
                vec![format!(
                    "GRANT EXECUTE ON FUNCTION \"deed\".\"emit\"(text, text, jsonb) TO {}",
                    role.quoted()
                )],
            ));
        }
        if !live.schema_grantees.contains(role.as_str()) {
            out.push(change(
                Phase::Capture,
                "grant",
                "deed",
                format!("grant USAGE on schema deed to {role}"),
                format!("missing grant: USAGE on schema deed to {role}"),
                vec![format!("GRANT USAGE ON SCHEMA \"deed\" TO {}", role.quoted())],
            ));
        }
    }
    if !reinstalled {
        for g in
            live.emit_grantees.iter().filter(|g| !emitters.iter().any(|e| e.as_str() == g.as_str()))
        {
            out.push(change(
                Phase::Capture,
                "revoke",
                "deed.emit",
                format!("revoke EXECUTE on deed.emit from {g}"),
                format!("extra grant: EXECUTE on deed.emit to {g}"),
                vec![format!(
                    "REVOKE EXECUTE ON FUNCTION \"deed\".\"emit\"(text, text, jsonb) FROM {}",
                    if g == "PUBLIC" { "PUBLIC".into() } else { deed_ident::quote_ident(g) }
                )],
            ));
        }
    }
    // Relay logins read deed.capture_epochs there.
    let relays = super::relay_login::wanted(desired);
    let keep = |g: &str| {
        emitters.iter().any(|e| e.as_str() == g) || relays.iter().any(|r| r.as_str() == g)
    };
    for g in live.schema_grantees.iter().filter(|g| !keep(g)) {
        out.push(change(
            Phase::Capture,
            "revoke",
            "deed",
            format!("revoke USAGE on schema deed from {g}"),
            format!("extra grant: USAGE on schema deed to {g}"),
            vec![format!(
                "REVOKE USAGE ON SCHEMA \"deed\" FROM {}",
                if g == "PUBLIC" { "PUBLIC".into() } else { deed_ident::quote_ident(g) }
            )],
        ));
    }
}
