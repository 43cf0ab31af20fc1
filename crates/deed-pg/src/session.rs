//! The settings every deed session fixes for itself.
//!
//! A database or role can carry its own defaults (`ALTER DATABASE … SET`),
//! and some of them change what SQL text means: with
//! `standard_conforming_strings = off` a backslash escapes a quote, so a
//! string deed checked as one statement splits into several on the server;
//! a `search_path` that puts a writable schema before `pg_catalog` lets an
//! object there stand in for a built-in function in deed's own catalog
//! queries, run with deed's rights. So deed never inherits them: each
//! session sets what deed relies on, right after connecting (or, for a
//! replication session, in its startup packet).

/// Built-ins first and only: nothing outside pg_catalog can shadow a
/// function or operator deed's queries use. pg_temp last, so temporary
/// objects never shadow anything either.
pub const SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// Name and value of each fixed setting.
pub const SETTINGS: &[(&str, &str)] = &[
    ("search_path", SEARCH_PATH),
    ("standard_conforming_strings", "on"),
    ("backslash_quote", "safe_encoding"),
    // Text forms of values (the relay renders them).
    ("DateStyle", "ISO"),
    ("TimeZone", "UTC"),
    ("IntervalStyle", "iso_8601"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    // A database default must not make deed's waits or transactions fail
    // in ways it does not expect; deed sets its own timeouts where it
    // needs them.
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("default_transaction_isolation", "read committed"),
    // `IF NOT EXISTS` and friends talk; deed reports what it does itself.
    ("client_min_messages", "warning"),
];

/// The settings as one batch of `SET` statements, for a regular session.
pub fn settings_sql() -> String {
    SETTINGS
        .iter()
        .map(|(k, v)| format!("SET {k} = {};", setting_value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The settings as a startup `options` string (`-c name=value …`), for a
/// replication session, which takes no `SET`. Spaces inside a value are
/// escaped as the server's option parser expects.
pub fn startup_options() -> String {
    SETTINGS
        .iter()
        .map(|(k, v)| format!("-c {k}={}", v.replace(' ', "\\ ")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A list value (`a, b`) is written as a list of identifiers; anything
/// else as one literal.
fn setting_value(v: &str) -> String {
    if v.contains(", ") { v.to_string() } else { format!("'{}'", v.replace('\'', "''")) }
}

/// Runs exactly one statement through the extended protocol, which
/// refuses a text holding more than one: however a string was put
/// together, it can never smuggle in a second statement.
pub async fn execute_one(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<u64, tokio_postgres::Error> {
    client.execute_typed(sql, &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_forms() {
        let sql = settings_sql();
        assert!(sql.starts_with("SET search_path = pg_catalog, pg_temp; "));
        assert!(sql.contains("SET standard_conforming_strings = 'on';"));
        let opts = startup_options();
        assert!(opts.contains("-c search_path=pg_catalog,\\ pg_temp"));
        assert!(opts.contains("-c default_transaction_isolation=read\\ committed"));
    }
}
