//! A relay that keeps failing says so where `deed status` can see it: a
//! session named `deed relay failing since <time>: <service>` in
//! `pg_stat_activity`, kept open while the relay retries and closed once
//! it delivers again. It takes no lock and writes nothing.

use deed_pg::Client;

/// The `application_name` prefix of a failing relay's session.
pub const FAILING: &str = "deed relay failing since ";

#[derive(Default)]
pub struct Presence {
    client: Option<Client>,
    since: Option<String>,
}

impl Presence {
    /// Marks the relay failing (from now, unless it already was). Best
    /// effort: when the database itself is unreachable there is nowhere
    /// to say it, and the relay's log says it instead.
    pub async fn failing(&mut self, url: &str, service: &str) {
        let since = self.since.get_or_insert_with(now_text).clone();
        if self.client.is_none() {
            self.client = deed_pg::connect(url).await.ok();
        }
        let Some(client) = &self.client else { return };
        let name = format!("{FAILING}{since}: {service}");
        if client
            .execute("SELECT set_config('application_name', $1, false)", &[&name])
            .await
            .is_err()
        {
            self.client = None;
        }
    }

    /// The relay delivers again.
    pub fn clear(&mut self) {
        self.client = None;
        self.since = None;
    }

    pub fn is_failing(&self) -> bool {
        self.since.is_some()
    }
}

fn now_text() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    // Whole seconds: the name has 63 bytes in all.
    let text = crate::pgoutput::pg_time_text(micros - 946_684_800_000_000);
    format!("{}Z", &text[..19])
}

/// How `deed status` finds a failing relay of `service`, from the
/// application names of the server's sessions.
pub fn failing_since(application_names: &[String], service: &str) -> Option<String> {
    application_names.iter().find_map(|name| {
        let rest = name.strip_prefix(FAILING)?;
        let (since, who) = rest.split_once(": ")?;
        // The server cuts names at 63 bytes; a cut service name still
        // matches its beginning.
        let cut = name.len() >= 63;
        (who == service || (cut && service.starts_with(who))).then(|| since.to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn failing_relays_are_found_by_service() {
        let names = vec![
            "deed".to_string(),
            "deed relay failing since 2026-11-22T05:10:03Z: billing".to_string(),
        ];
        assert_eq!(
            super::failing_since(&names, "billing").as_deref(),
            Some("2026-11-22T05:10:03Z")
        );
        assert_eq!(super::failing_since(&names, "bill"), None);
        assert_eq!(super::failing_since(&names, "orders"), None);
        let long = "a_service_with_a_very_long_name_indeed";
        let cut =
            format!("deed relay failing since 2026-11-22T05:10:03Z: {long}")[..63].to_string();
        assert!(super::failing_since(&[cut], long).is_some());
    }
}
