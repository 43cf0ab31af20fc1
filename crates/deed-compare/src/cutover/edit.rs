//! Taking a read out of a service's `reads` in deed.toml, and putting it
//! back, as text edits: comments, order and layout stay as written.

use deed_manifest::{ContractRef, Location, Service};

use crate::error::CompareError;

/// The text without the `reads` entry written at `at`.
pub fn remove_read(text: &str, at: &Location, read: &ContractRef) -> Result<String, CompareError> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let i = at.line.checked_sub(1).filter(|i| *i < lines.len()).ok_or_else(|| lost(at, read))?;
    let line = &lines[i];
    let from: usize = line.char_indices().nth(at.column.saturating_sub(1)).map_or(0, |(b, _)| b);
    let quote_at =
        line[from..].find(['"', '\'']).map(|p| from + p).ok_or_else(|| lost(at, read))?;
    let quote = &line[quote_at..quote_at + 1];
    let end =
        line[quote_at + 1..].find(quote).map(|p| quote_at + 2 + p).ok_or_else(|| lost(at, read))?;
    if line[quote_at + 1..end - 1] != read.to_string() {
        return Err(lost(at, read));
    }
    let after = &line[end..];
    let trimmed = after.trim_start();
    let (start, stop) = if let Some(rest) = trimmed.strip_prefix(',') {
        // `"a", "b"`: the entry, its comma and the spaces after it.
        let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        (quote_at, line.len() - rest.len() + spaces)
    } else {
        // The last entry: the comma before it goes with it.
        let before = line[..quote_at].trim_end();
        match before.strip_suffix(',') {
            Some(b) => (b.len(), end),
            None => (quote_at, end),
        }
    };
    let edited = format!("{}{}", &line[..start], &line[stop..]);
    if edited.trim().is_empty() {
        lines.remove(i);
    } else {
        lines[i] = edited;
    }
    Ok(lines.concat())
}

fn lost(at: &Location, read: &ContractRef) -> CompareError {
    CompareError::Setup(format!(
        "{at}: could not find \"{read}\" where the manifest was read; edit deed.toml by hand"
    ))
}

/// The text with `read` added to `service`'s `reads` (the key is created
/// after the service's header when it has none).
pub fn add_read(text: &str, service: &Service, read: &ContractRef) -> Result<String, CompareError> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let header = service.location.line.saturating_sub(1);
    if header >= lines.len() {
        return Err(CompareError::Setup(format!(
            "{}: service {} is not where the manifest was read",
            service.location, service.name
        )));
    }
    let end = lines[header + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |p| header + 1 + p);
    let entry = format!("\"{read}\"");
    for line in &mut lines[header + 1..end] {
        let t = line.trim_start();
        let Some(rest) = t.strip_prefix("reads") else { continue };
        if !rest.trim_start().starts_with('=') {
            continue;
        }
        let open = line.find('[').ok_or_else(|| {
            CompareError::Setup(format!(
                "{}: {}'s reads is not an array",
                service.location, service.name
            ))
        })?;
        let after = &line[open + 1..];
        let inserted = if after.trim_start().starts_with(']') {
            entry.clone()
        } else if after.trim().is_empty() || after.trim_start().starts_with('#') {
            format!("\n  {entry},")
        } else {
            format!("{entry}, ")
        };
        line.insert_str(open + 1, &inserted);
        return Ok(lines.concat());
    }
    lines.insert(header + 1, format!("reads = [{entry}]\n"));
    Ok(lines.concat())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use deed_manifest::Manifest;

    use super::*;

    const TEXT: &str = r#"version = 1
[services.catalog]
owns = ["public.products"]
[[services.catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id"]
[[services.catalog.contracts]]
name = "products"
version = 2
from = "public.products"
columns = ["id"]

# orders reads the catalog
[services.orders]
reads = [
  "catalog.products.v1",  # the old version
  "catalog.products.v2",
]
"#;

    fn parse(text: &str) -> Manifest {
        Manifest::parse(Path::new("deed.toml"), text, &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn cut(text: &str, read: &str) -> String {
        let m = parse(text);
        let r = ContractRef::parse(read).unwrap();
        let at = m.service("orders").unwrap().locations.reads[&r].clone();
        remove_read(text, &at, &r).unwrap()
    }

    #[test]
    fn removing_and_adding_back_keeps_comments_and_layout() {
        let v1 = cut(TEXT, "catalog.products.v1");
        assert!(v1.contains("  # the old version\n  \"catalog.products.v2\",\n"), "{v1}");
        assert_eq!(parse(&v1).service("orders").unwrap().reads.len(), 1);
        let both = cut(&v1, "catalog.products.v2");
        assert!(
            both.contains(
                "# orders reads the catalog\n[services.orders]\nreads = [\n  # the old version\n]\n"
            ),
            "{both}"
        );
        let m = parse(&both);
        let r = ContractRef::parse("catalog.products.v1").unwrap();
        let back = add_read(&both, m.service("orders").unwrap(), &r).unwrap();
        assert_eq!(parse(&back).service("orders").unwrap().reads, vec![r]);
    }

    #[test]
    fn inline_arrays_lose_the_entry_and_one_comma() {
        let text = TEXT.replace(
            "reads = [\n  \"catalog.products.v1\",  # the old version\n  \"catalog.products.v2\",\n]",
            "reads = [\"catalog.products.v1\", \"catalog.products.v2\"]  # both",
        );
        assert!(
            cut(&text, "catalog.products.v1")
                .contains("reads = [\"catalog.products.v2\"]  # both\n")
        );
        assert!(
            cut(&text, "catalog.products.v2")
                .contains("reads = [\"catalog.products.v1\"]  # both\n")
        );
        let none = text
            .replace("reads = [\"catalog.products.v1\", \"catalog.products.v2\"]  # both\n", "");
        let m = parse(&none);
        let r = ContractRef::parse("catalog.products.v2").unwrap();
        let added = add_read(&none, m.service("orders").unwrap(), &r).unwrap();
        assert!(
            added.contains("[services.orders]\nreads = [\"catalog.products.v2\"]\n"),
            "{added}"
        );
    }
}
