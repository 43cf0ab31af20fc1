//! Each prerequisite, judged: what it is for, whether it holds, and what
//! to change when it does not.

use deed_manifest::Manifest;
use serde::Serialize;

use deed_pg::Provider;

use crate::observe::Observed;
use crate::prove::Outcome;

/// What to ask for when apply's steps are refused, the provider's way.
fn admin_fix(provider: Provider) -> String {
    let role = match provider {
        Provider::Rds => "the master user (a member of rds_superuser)",
        Provider::CloudSql => "a user of the cloudsqlsuperuser role",
        Provider::AlloyDb => "a user of the alloydbsuperuser role",
        Provider::Azure => "the server admin (a member of azure_pg_admin)",
        Provider::Supabase => "the postgres user",
        Provider::Neon => "a role created in the console (a member of neon_superuser)",
        Provider::SelfManaged => "a superuser, or a role with CREATEROLE that owns the database",
    };
    format!("run deed as {role}: deed apply does each of these steps")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Works, with less (a source unavailable, a risk).
    Warn,
    /// A rung the manifest needs cannot work.
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub rung: u8,
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
    /// What to change, when it is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(rung: u8, name: &'static str, level: Level, detail: String, fix: &str) -> Check {
    let fix = (level != Level::Ok).then(|| fix.to_string());
    Check { rung, name, level, detail, fix }
}

fn ok_or(ok: bool, otherwise: Level) -> Level {
    if ok { Level::Ok } else { otherwise }
}

pub fn checks(o: &Observed, manifest: Option<&Manifest>) -> Vec<Check> {
    let setting = |k: &str| o.settings.get(k).map(String::as_str).unwrap_or("");
    let mut out = Vec::new();

    // Rung 0: something to audit.
    let hidden = |k: &str| o.unreadable.iter().any(|u| u == k);
    // A role without pg_read_all_settings cannot read the setting; an
    // installed extension is the next best sign (it works only preloaded).
    let preloaded = if hidden("shared_preload_libraries") {
        o.pgss_installed
    } else {
        setting("shared_preload_libraries").split(',').any(|l| l.trim() == "pg_stat_statements")
    };
    out.push(check(0, "pg_stat_statements preloaded", ok_or(preloaded, Level::Warn),
        if hidden("shared_preload_libraries") {
            format!("{} may not read shared_preload_libraries (pg_read_all_settings); the extension is {}installed", o.role, if o.pgss_installed { "" } else { "not " })
        } else {
            format!("shared_preload_libraries = '{}'", setting("shared_preload_libraries"))
        },
        "add pg_stat_statements to shared_preload_libraries in postgresql.conf and restart (or audit logs instead)"));
    out.push(check(
        0,
        "pg_stat_statements installed",
        ok_or(o.pgss_installed, Level::Warn),
        format!("the extension is {}in this database", if o.pgss_installed { "" } else { "not " }),
        "CREATE EXTENSION pg_stat_statements; in the shared database",
    ));
    let track = setting("pg_stat_statements.track");
    out.push(check(
        0,
        "statements inside functions",
        ok_or(track == "all" || !preloaded, Level::Warn),
        format!("pg_stat_statements.track = '{track}'"),
        "pg_stat_statements.track = all records statements run inside functions too",
    ));
    out.push(check(
        0,
        "other roles' statements readable",
        ok_or(o.superuser || o.reads_all_stats, Level::Warn),
        format!(
            "{} {} read other roles' query texts",
            o.role,
            if o.superuser || o.reads_all_stats { "can" } else { "cannot" }
        ),
        &format!("GRANT pg_read_all_stats TO {}", o.role),
    ));
    let dest = setting("log_destination");
    let prefix = setting("log_line_prefix");
    let structured = dest.split(',').any(|d| matches!(d.trim(), "csvlog" | "jsonlog"));
    let stderr_usable = dest.split(',').any(|d| d.trim() == "stderr") && prefix.contains("%u");
    out.push(check(0, "log format deed reads", ok_or(structured || stderr_usable, Level::Warn),
        format!("log_destination = '{dest}', log_line_prefix = '{prefix}'"),
        "log_destination = 'csvlog' (or jsonlog), or keep stderr with %u (and %d, %a) in log_line_prefix"));
    let logs_statements =
        setting("log_statement") == "all" || setting("log_min_duration_statement") == "0";
    out.push(check(0, "statements logged", ok_or(logs_statements, Level::Warn),
        format!("log_statement = '{}', log_min_duration_statement = '{}'", setting("log_statement"), setting("log_min_duration_statement")),
        "log_min_duration_statement = 0 (or log_statement = 'all') while you collect a log to audit"));

    // Rung 1: contracts enforced by roles.
    let provider = o.actor.as_ref().map_or(Provider::SelfManaged, |a| a.provider);
    out.push(check(
        1,
        "where deed runs",
        Level::Ok,
        format!(
            "{} {}; deed runs as {}{}",
            provider.name(),
            o.server_major,
            o.role,
            if o.superuser { ", a superuser" } else { ", not a superuser" }
        ),
        "",
    ));
    for p in &o.proofs {
        let (level, detail) = match &p.outcome {
            Outcome::Done => (Level::Ok, format!("done (rolled back): {}", p.sql)),
            Outcome::Refused { sqlstate, message } => {
                (Level::Fail, format!("{}: refused: {message} (SQLSTATE {sqlstate})", p.sql))
            }
            Outcome::Skipped => (Level::Fail, "not tried: an earlier step failed".to_string()),
        };
        out.push(check(1, p.step, level, detail, &admin_fix(provider)));
    }
    if manifest.is_some() {
        out.push(check(1, "the manifest's logins exist", ok_or(o.missing_logins.is_empty(), Level::Fail),
            if o.missing_logins.is_empty() { "every login role exists".into() } else { format!("missing: {}", o.missing_logins.join(", ")) },
            "create the login roles (deed never handles passwords), or correct `logins` in deed.toml"));
    }
    let (level, detail) = match &o.pg_dump {
        Ok(v) if *v >= o.server_major => {
            (Level::Ok, format!("pg_dump {v} for server {}", o.server_major))
        }
        Ok(v) => (
            Level::Fail,
            format!(
                "pg_dump {v} is older than the server ({}): it refuses to dump it",
                o.server_major
            ),
        ),
        Err(e) => (Level::Fail, format!("pg_dump not found: {e}")),
    };
    out.push(check(
        1,
        "pg_dump for deed check",
        level,
        detail,
        &format!(
            "install the PostgreSQL {} client tools (or set DEED_PG_BINDIR to their bin directory)",
            o.server_major
        ),
    ));

    // Rung 2: change capture, when the manifest declares events.
    let capturing: Vec<&str> = manifest
        .map(|m| {
            m.services.iter().filter(|s| !s.events.is_empty()).map(|s| s.name.as_str()).collect()
        })
        .unwrap_or_default();
    let needed = if capturing.is_empty() { Level::Warn } else { Level::Fail };
    let wal = setting("wal_level");
    out.push(check(
        2,
        "wal_level = logical",
        ok_or(wal == "logical", needed),
        format!(
            "wal_level = '{wal}'{}",
            if capturing.is_empty() {
                " (no events declared yet)".to_string()
            } else {
                let verb = if capturing.len() == 1 { "declares" } else { "declare" };
                format!("; {} {verb} events", deed_text::and_list(&capturing))
            }
        ),
        provider.logical_decoding_setting(),
    ));
    let max_slots: u32 = setting("max_replication_slots").parse().unwrap_or(0);
    let free = max_slots.saturating_sub(o.slots_used);
    out.push(check(2, "replication slots free", ok_or(free as usize >= capturing.len() && max_slots > 0, needed),
        format!("{free} of max_replication_slots = {max_slots} free; capture needs one per service with events ({})", capturing.len()),
        "raise max_replication_slots in postgresql.conf, then restart"));
    let senders: u32 = setting("max_wal_senders").parse().unwrap_or(0);
    out.push(check(
        2,
        "WAL senders for the relay",
        ok_or(senders > 0, needed),
        format!("max_wal_senders = {senders}"),
        "max_wal_senders = 10 (the relay's stream is one)",
    ));
    out.push(check(
        2,
        "the relay's role may replicate",
        ok_or(o.superuser || o.replication, Level::Warn),
        format!(
            "{} {}",
            o.role,
            if o.superuser || o.replication {
                "may create replication slots"
            } else {
                "may not create replication slots"
            }
        ),
        &match provider.replication_role() {
            Some(role) => format!("GRANT {role} TO {} (as the provider's admin)", o.role),
            None => format!(
                "ALTER ROLE {} REPLICATION (as a superuser or the provider's admin), or run deed relay as a role that has it",
                o.role
            ),
        },
    ));
    let keep = setting("max_slot_wal_keep_size");
    out.push(check(2, "a stopped relay cannot fill the disk", ok_or(keep != "-1", Level::Warn),
        format!("max_slot_wal_keep_size = {keep}"),
        "max_slot_wal_keep_size = 10GB (a size your disk can spare; deed status warns before it is reached)"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(wal: &str) -> Observed {
        let mut o = Observed {
            server_major: 17,
            role: "deed".into(),
            superuser: true,
            pg_dump: Ok(16),
            ..Observed::default()
        };
        for (k, v) in [
            ("wal_level", wal),
            ("max_replication_slots", "10"),
            ("max_wal_senders", "10"),
            ("max_slot_wal_keep_size", "-1"),
            ("log_destination", "stderr"),
            ("log_line_prefix", "%m [%p] "),
        ] {
            o.settings.insert(k.into(), v.into());
        }
        o
    }

    fn level(checks: &[Check], name: &str) -> Level {
        checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name}")).level
    }

    #[test]
    fn what_the_manifest_needs_fails_and_the_rest_warns() {
        let with_events = Manifest::parse(
            std::path::Path::new("deed.toml"),
            "version = 1\n[services.catalog]\nowns = [\"public.products\"]\n[[services.catalog.events]]\nname = \"price_alert\"\n",
            &|_| None,
        )
        .unwrap();
        let c = checks(&observed("replica"), Some(&with_events));
        assert_eq!(level(&c, "wal_level = logical"), Level::Fail);
        assert_eq!(level(&c, "pg_dump for deed check"), Level::Fail, "pg_dump 16 cannot dump 17");
        assert_eq!(level(&c, "log format deed reads"), Level::Warn, "stderr without %u");
        assert!(c.iter().filter(|c| c.level != Level::Ok).all(|c| c.fix.is_some()));
        let c = checks(&observed("replica"), None);
        assert_eq!(level(&c, "wal_level = logical"), Level::Warn, "no events declared yet");
        let c = checks(&observed("logical"), Some(&with_events));
        assert_eq!(level(&c, "wal_level = logical"), Level::Ok);
        assert_eq!(level(&c, "a stopped relay cannot fill the disk"), Level::Warn);
    }

    /// An RDS admin: no superuser, the provider's replication role, stats
    /// readable, pg_stat_statements installed, logical decoding on.
    fn rds() -> Observed {
        let mut o = observed("logical");
        o.superuser = false;
        o.createrole = true;
        // Observed as `observe` does: a member of rds_replication may.
        o.replication = true;
        o.reads_all_stats = true;
        o.pgss_installed = true;
        o.role = "postgres".into();
        o.settings.insert("shared_preload_libraries".into(), "rdsutils,pg_stat_statements".into());
        o.settings.insert("max_slot_wal_keep_size".into(), "10240".into());
        o.actor = Some(deed_pg::Actor {
            name: deed_ident::Ident::new("postgres").unwrap(),
            superuser: false,
            create_role: true,
            create_db: true,
            replication: false,
            replication_role: true,
            version: 170004,
            provider: Provider::Rds,
            owns_database: true,
            create_in_database: true,
        });
        o
    }

    #[test]
    fn the_report_of_a_self_hosted_and_a_managed_server() {
        let with_events = Manifest::parse(
            std::path::Path::new("deed.toml"),
            "version = 1\n[services.catalog]\nowns = [\"public.products\"]\nlogins = [\"catalog_svc\"]\n[[services.catalog.events]]\nname = \"price_alert\"\n",
            &|_| None,
        )
        .unwrap();
        let mut self_hosted = observed("replica");
        self_hosted.missing_logins = vec!["catalog_svc".into()];
        for (name, o) in [("self_hosted", self_hosted), ("rds", rds())] {
            let c = checks(&o, Some(&with_events));
            insta::assert_snapshot!(format!("{name}_table"), crate::render::table(&c));
            insta::assert_snapshot!(format!("{name}_json"), crate::render::json(&c));
        }
    }
}
