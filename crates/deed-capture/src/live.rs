use std::collections::{BTreeMap, BTreeSet};

use deed_ident::QualifiedName;
use deed_pg::{Client, PgError};

/// Capture state read from the catalogs.
#[derive(Debug, Clone, Default)]
pub struct CaptureLive {
    pub wal_level: String,
    /// This database's oid: part of its slots' names.
    pub database_oid: u32,
    /// deed_* publications: name → (tables, [publishes truncate?, inserts,
    /// updates, deletes, via the partition root]).
    pub publications: BTreeMap<String, (BTreeSet<QualifiedName>, [bool; 5])>,
    /// Their comments: which contract each state event carries, as the
    /// last apply recorded it.
    pub publication_comments: BTreeMap<String, String>,
    /// deed_* logical slots of this database: name → (plugin, active).
    pub slots: BTreeMap<String, (String, bool)>,
    /// relreplident of tables, and their primary key columns.
    pub replica_identity: BTreeMap<QualifiedName, char>,
    /// Captured table → its partitions (and inheritance children), which
    /// log their own old rows.
    pub children: BTreeMap<QualifiedName, Vec<QualifiedName>>,
    pub primary_keys: BTreeMap<QualifiedName, Vec<String>>,
    /// Columns whose values can be stored out of line (TOAST).
    pub varlena_columns: BTreeMap<QualifiedName, BTreeSet<String>>,
    /// Columns that may be NULL (no NOT NULL constraint).
    pub nullable_columns: BTreeMap<QualifiedName, BTreeSet<String>>,
    pub deed_schema: bool,
    pub emit_comment: Option<String>,
    pub domain_events: BTreeMap<String, String>,
    /// Roles with EXECUTE on deed.emit, and USAGE on schema deed.
    pub emit_grantees: BTreeSet<String>,
    pub schema_grantees: BTreeSet<String>,
    /// Services whose tables `deed split` moved to their own database:
    /// their capture lives there, and this database's is left alone.
    pub moved: BTreeSet<String>,
    /// Whether deed may give `REPLICATION` to a login it creates (a
    /// superuser; on 16+ a CREATEROLE role that has it).
    pub give_replication: bool,
    /// The provider's replication role deed may grant instead
    /// (`rds_replication` on RDS), when it cannot give the attribute.
    pub replication_role: Option<&'static str>,
    /// Whether deed may create replication slots, and if not, where the
    /// provider switches replication on for it.
    pub can_replicate: bool,
    pub provider: Option<deed_pg::Provider>,
    /// The role deed runs as, quoted for SQL.
    pub actor: String,
    /// PostgreSQL 17+: slots are created as failover slots, which a
    /// standby with `sync_replication_slots` keeps in step, so capture
    /// survives a failover to it.
    pub failover_slots: bool,
    pub epochs_table: bool,
    /// `deed_*_relay` roles.
    pub relay_logins: BTreeMap<String, super::relay_login::RelayLogin>,
}

fn q(context: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError + '_ {
    move |e| PgError::query(context, e)
}

impl CaptureLive {
    /// What capture has in the connected database; `actor` is the role
    /// deed runs as there.
    pub async fn load(
        client: &Client,
        actor: &deed_pg::Actor,
        tables: &[QualifiedName],
    ) -> Result<CaptureLive, PgError> {
        let row = client
            .query_one(
                "SELECT current_setting('wal_level'),
                        (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .await
            .map_err(q("reading wal_level"))?;
        let mut live = CaptureLive {
            wal_level: row.get(0),
            database_oid: row.get(1),
            ..CaptureLive::default()
        };
        live.moved = deed_state::splits::moved(client).await?;
        for row in client
            .query(
                "SELECT p.pubname::text, p.pubtruncate, p.pubinsert, p.pubupdate, p.pubdelete, p.pubviaroot,
                        coalesce(array_agg(n.nspname::text) FILTER (WHERE c.oid IS NOT NULL), '{}'),
                        coalesce(array_agg(c.relname::text) FILTER (WHERE c.oid IS NOT NULL), '{}'),
                        obj_description(p.oid, 'pg_publication')
                   FROM pg_publication p
                   LEFT JOIN pg_publication_rel pr ON pr.prpubid = p.oid
                   LEFT JOIN pg_class c ON c.oid = pr.prrelid
                   LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE p.pubname LIKE 'deed\\_%'
                  GROUP BY p.oid",
                &[],
            )
            .await
            .map_err(q("reading publications"))?
        {
            let schemas: Vec<String> = row.get(6);
            let names: Vec<String> = row.get(7);
            let set = schemas
                .iter()
                .zip(&names)
                .filter_map(|(s, n)| QualifiedName::from_catalog(s, n).ok())
                .collect();
            if let Some(comment) = row.get::<_, Option<String>>(8) {
                live.publication_comments.insert(row.get(0), comment);
            }
            live.publications
                .insert(row.get(0), (set, [row.get(1), row.get(2), row.get(3), row.get(4), row.get(5)]));
        }
        for row in client
            .query(
                "SELECT slot_name::text, coalesce(plugin::text, ''), active FROM pg_replication_slots
                  WHERE slot_name LIKE 'deed\\_%' AND database = current_database()",
                &[],
            )
            .await
            .map_err(q("reading replication slots"))?
        {
            live.slots.insert(row.get(0), (row.get(1), row.get(2)));
        }
        let names: Vec<String> = tables.iter().map(QualifiedName::quoted).collect();
        for row in client
            .query(
                "WITH RECURSIVE tree AS (
                     SELECT to_regclass(x) AS oid, to_regclass(x) AS root FROM unnest($1::text[]) x
                     UNION
                     SELECT i.inhrelid, t.root FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
                 )
                 SELECT n.nspname::text, c.relname::text, c.relreplident::text,
                        coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_index i
                                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                                   WHERE i.indrelid = c.oid AND i.indisprimary), '{}'),
                        coalesce((SELECT array_agg(a.attname::text) FROM pg_attribute a
                                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attlen = -1), '{}'),
                        rn.nspname::text, r.relname::text,
                        coalesce((SELECT array_agg(a.attname::text) FROM pg_attribute a
                                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND NOT a.attnotnull), '{}')
                   FROM tree
                   JOIN pg_class c ON c.oid = tree.oid JOIN pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_class r ON r.oid = tree.root JOIN pg_namespace rn ON rn.oid = r.relnamespace
                  ORDER BY 6, 7, 1, 2",
                &[&names],
            )
            .await
            .map_err(q("reading replica identities"))?
        {
            let (Ok(name), Ok(root)) = (
                QualifiedName::from_catalog(row.get(0), row.get(1)),
                QualifiedName::from_catalog(row.get(5), row.get(6)),
            ) else {
                continue;
            };
            let ident: String = row.get(2);
            live.replica_identity.insert(name.clone(), ident.chars().next().unwrap_or('d'));
            live.primary_keys.insert(name.clone(), row.get(3));
            let varlena: Vec<String> = row.get(4);
            live.varlena_columns.insert(name.clone(), varlena.into_iter().collect());
            let nullable: Vec<String> = row.get(7);
            live.nullable_columns.insert(name.clone(), nullable.into_iter().collect());
            if name != root {
                live.children.entry(root).or_default().push(name);
            }
        }
        live.deed_schema = client
            .query_one("SELECT to_regnamespace('deed') IS NOT NULL", &[])
            .await
            .map_err(q("looking for schema deed"))?
            .get(0);
        if live.deed_schema {
            let row = client
                .query_one(
                    "SELECT (SELECT obj_description(p.oid, 'pg_proc') FROM pg_proc p
                              WHERE p.oid = to_regprocedure('deed.emit(text, text, jsonb)')),
                            to_regclass('deed.domain_events') IS NOT NULL",
                    &[],
                )
                .await
                .map_err(q("reading deed.emit"))?;
            live.emit_comment = row.get(0);
            let has_table: bool = row.get(1);
            if has_table {
                for r in client
                    .query("SELECT event, owner_role::text FROM deed.domain_events", &[])
                    .await
                    .map_err(q("reading deed.domain_events"))?
                {
                    live.domain_events.insert(r.get(0), r.get(1));
                }
            }
            if live.emit_comment.is_some() {
                for r in client
                    .query(
                        "SELECT coalesce(g.rolname::text, 'PUBLIC') FROM pg_proc p
                           CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                           LEFT JOIN pg_roles g ON g.oid = a.grantee
                          WHERE p.oid = to_regprocedure('deed.emit(text, text, jsonb)') AND a.grantee <> p.proowner",
                        &[],
                    )
                    .await
                    .map_err(q("reading grants on deed.emit"))?
                {
                    live.emit_grantees.insert(r.get(0));
                }
            }
            for r in client
                .query(
                    "SELECT coalesce(g.rolname::text, 'PUBLIC') FROM pg_namespace n
                       CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                       LEFT JOIN pg_roles g ON g.oid = a.grantee
                      WHERE n.nspname = 'deed' AND a.grantee <> n.nspowner AND a.privilege_type = 'USAGE'",
                    &[],
                )
                .await
                .map_err(q("reading grants on schema deed"))?
            {
                live.schema_grantees.insert(r.get(0));
            }
        }
        live.load_relay_logins(client, actor).await?;
        Ok(live)
    }

    async fn load_relay_logins(
        &mut self,
        client: &Client,
        actor: &deed_pg::Actor,
    ) -> Result<(), PgError> {
        self.give_replication = actor.can_give_replication();
        self.can_replicate = actor.can_replicate();
        self.provider = Some(actor.provider);
        self.actor = actor.name.quoted();
        self.failover_slots = actor.major() >= 17;
        if !self.give_replication {
            if let Some(role) = actor.provider.replication_role() {
                let admin: bool = client
                    .query_one(
                        "SELECT EXISTS (SELECT FROM pg_roles g WHERE g.rolname = $1
                                          AND pg_has_role(current_user, g.oid, 'MEMBER WITH ADMIN OPTION'))",
                        &[&role],
                    )
                    .await
                    .map_err(q("reading the provider's replication role"))?
                    .get(0);
                self.replication_role = admin.then_some(role);
            }
        }
        let epochs = deed_state::Table::CaptureEpochs;
        self.epochs_table = deed_state::exists(client, epochs).await?;
        for r in client
            .query(
                "SELECT r.rolname::text, r.rolcanlogin,
                        r.rolreplication OR EXISTS (SELECT FROM pg_roles g WHERE g.rolname = $1
                                                      AND pg_has_role(r.oid, g.oid, 'MEMBER')),
                        r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolbypassrls, r.rolinherit,
                        to_regnamespace('deed') IS NOT NULL AND has_schema_privilege(r.oid, 'deed', 'USAGE'),
                        to_regclass($2) IS NOT NULL AND has_table_privilege(r.oid, $2, 'SELECT')
                   FROM pg_roles r WHERE r.rolname LIKE 'deed\\_%\\_relay'",
                &[&self.replication_role, &epochs.to_string()],
            )
            .await
            .map_err(q("reading relay logins"))?
        {
            self.relay_logins.insert(
                r.get(0),
                super::relay_login::RelayLogin {
                    login: r.get(1),
                    replication: r.get(2),
                    extra: r.get(3),
                    inherit: r.get(4),
                    schema_usage: r.get(5),
                    epochs_select: r.get(6),
                },
            );
        }
        Ok(())
    }

    /// The service's slot in this database: `deed_<service>_<oid>`, or
    /// the name an earlier version gave it when only that one exists.
    pub fn slot_for(&self, service: &str) -> String {
        deed_events::pick_slot(service, self.database_oid, |n| self.slots.contains_key(n))
    }
}
