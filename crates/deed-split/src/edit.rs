//! Pointing a service's `database` at another URL in deed.toml, as a text
//! edit: the value is replaced where it is written (or the key added after
//! the service's header), and everything else stays byte for byte.

use deed_manifest::{Manifest, Service};

use crate::error::SplitError;

fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The manifest's text with `service`'s `database` set to `value` (as
/// written: `${VAR}` stays a reference), or removed when `value` is None.
pub fn set_database(
    manifest: &Manifest,
    service: &Service,
    value: Option<&str>,
) -> Result<String, SplitError> {
    let text = manifest.source.text();
    if let Some((_, span)) = service.database_written() {
        let line_start = text[..span.start].rfind('\n').map_or(0, |p| p + 1);
        let line_end = text[span.end..].find('\n').map_or(text.len(), |p| span.end + p + 1);
        return Ok(match value {
            Some(v) => format!("{}{}{}", &text[..span.start], toml_string(v), &text[span.end..]),
            None => {
                // The whole `database = "…"` line, when it holds nothing else.
                let rest = text[span.end..line_end].trim();
                if rest.is_empty() || rest.starts_with('#') {
                    format!("{}{}", &text[..line_start], &text[line_end..])
                } else {
                    return Err(SplitError::Setup(format!(
                        "{}: cannot take `database` out of service {}: edit deed.toml by hand",
                        service.location, service.name
                    )));
                }
            }
        });
    }
    let Some(v) = value else { return Ok(text.to_string()) };
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let header = service.location.line.saturating_sub(1);
    if header >= lines.len() {
        return Err(SplitError::Setup(format!(
            "{}: service {} is not where the manifest was read",
            service.location, service.name
        )));
    }
    let added = format!("database = {}\n", toml_string(v));
    if !lines[header].ends_with('\n') {
        let with_newline = format!("{}\n", lines[header]);
        let mut out: String = lines[..header].concat();
        out.push_str(&with_newline);
        out.push_str(&added);
        out.push_str(&lines[header + 1..].concat());
        return Ok(out);
    }
    lines.insert(header + 1, &added);
    Ok(lines.concat())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const TEXT: &str = "version = 1\n\n[services.catalog]  # the owner\nowns = [\"public.products\"]\nlogins = [\"catalog_svc\"]\n";

    fn parse(text: &str) -> Manifest {
        Manifest::parse(Path::new("deed.toml"), text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn adds_then_replaces_then_removes() {
        let m = parse(TEXT);
        let s = m.service("catalog").unwrap();
        let added = set_database(&m, s, Some("${CATALOG_DATABASE_URL}")).unwrap();
        assert_eq!(
            added,
            "version = 1\n\n[services.catalog]  # the owner\ndatabase = \"${CATALOG_DATABASE_URL}\"\nowns = [\"public.products\"]\nlogins = [\"catalog_svc\"]\n"
        );
        let m2 = parse(&added);
        let s2 = m2.service("catalog").unwrap();
        let replaced = set_database(&m2, s2, Some("postgres://h/c\"x")).unwrap();
        assert!(replaced.contains("database = \"postgres://h/c\\\"x\"\n"), "{replaced}");
        let removed = set_database(&m2, s2, None).unwrap();
        assert_eq!(removed, TEXT);
    }
}
