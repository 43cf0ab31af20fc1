/// The SQL text in a server log message, for the messages that carry an
/// executed statement: `statement: ...` and `execute <name>: ...`, each
/// optionally after `duration: <n> ms  ` (log_min_duration_statement).
/// Extended-protocol `parse` and `bind` messages are skipped, so each
/// execution counts once.
pub(crate) fn statement_text(message: &str) -> Option<&str> {
    let rest = match message.strip_prefix("duration: ") {
        Some(d) => {
            let after = d.find(" ms")? + 3;
            d[after..].trim_start()
        }
        None => message,
    };
    if let Some(sql) = rest.strip_prefix("statement: ") {
        return Some(sql);
    }
    let named = rest.strip_prefix("execute ")?;
    let colon = named.find(": ")?;
    Some(&named[colon + 2..])
}

#[cfg(test)]
mod tests {
    use super::statement_text;

    #[test]
    fn recognises_statement_messages() {
        assert_eq!(statement_text("statement: SELECT 1"), Some("SELECT 1"));
        assert_eq!(statement_text("execute <unnamed>: SELECT $1"), Some("SELECT $1"));
        assert_eq!(statement_text("execute S_1: UPDATE t SET a = $1"), Some("UPDATE t SET a = $1"));
        assert_eq!(statement_text("execute fetch from S_2/C_3: SELECT 2"), Some("SELECT 2"));
        assert_eq!(statement_text("duration: 0.123 ms  statement: SELECT 3"), Some("SELECT 3"));
        assert_eq!(
            statement_text("duration: 12.5 ms  execute <unnamed>: SELECT 4"),
            Some("SELECT 4")
        );
        assert_eq!(statement_text("duration: 0.050 ms  parse <unnamed>: SELECT 5"), None);
        assert_eq!(statement_text("duration: 0.050 ms  bind <unnamed>: SELECT 5"), None);
        assert_eq!(statement_text("duration: 0.050 ms"), None);
        assert_eq!(statement_text("connection authorized: user=a"), None);
    }
}
