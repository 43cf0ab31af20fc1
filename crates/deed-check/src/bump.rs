//! `deed contract bump <service>.<contract>`: start the next version as a
//! copy of the latest, right after it in deed.toml, ready to edit.

use std::path::Path;

use deed_manifest::Manifest;

use crate::error::CheckError;

/// Returns the new manifest text and the new version's reference.
pub fn bump(manifest: &Manifest, target: &str) -> Result<(String, String), CheckError> {
    let (service_name, contract_name) = target.split_once('.').ok_or_else(|| {
        CheckError::Usage(format!("{target:?}: write <service>.<contract>, e.g. catalog.products"))
    })?;
    let service = manifest.service(service_name).ok_or_else(|| {
        CheckError::Usage(format!("the manifest has no service {service_name:?}"))
    })?;
    let latest = service
        .contracts
        .iter()
        .filter(|c| c.name == contract_name)
        .max_by_key(|c| c.version)
        .ok_or_else(|| {
            CheckError::Usage(format!(
                "service {service_name} publishes no contract {contract_name:?}"
            ))
        })?;
    let text = manifest.source.text();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = latest.location.line - 1;
    // The block runs to the next table header; comments just before that
    // header belong to it, not to this block.
    let mut end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |p| start + 1 + p);
    while end > start + 1 && {
        let t = lines[end - 1].trim();
        t.is_empty() || t.starts_with('#')
    } {
        end -= 1;
    }
    let next = latest.version + 1;
    let mut block = String::new();
    let mut replaced = false;
    for (i, line) in lines[start..end].iter().enumerate() {
        let trimmed = line.trim_start();
        // The header's own comment describes the old version
        // (`# published as …_v1`): the copy goes without it.
        if i == 0 && trimmed.starts_with("[[") {
            if let Some(close) = line.find("]]") {
                if line[close + 2..].trim_start().starts_with('#') {
                    block.push_str(&line[..close + 2]);
                    block.push('\n');
                    continue;
                }
            }
        }
        if !replaced && trimmed.starts_with("version") && trimmed[7..].trim_start().starts_with('=')
        {
            let indent = &line[..line.len() - trimmed.len()];
            block.push_str(&format!("{indent}version = {next}\n"));
            replaced = true;
        } else {
            block.push_str(line);
        }
    }
    if !block.ends_with('\n') {
        block.push('\n');
    }
    let reference = format!("{service_name}.{contract_name}.v{next}");
    let header = format!(
        "\n# {reference}: a copy of v{}; edit its columns, apply, move readers, then retire v{}.\n",
        latest.version, latest.version
    );
    let before: String = lines[..end].concat();
    let after: String = lines[end..].concat();
    let mut new_text = before;
    if !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    new_text.push_str(&header);
    new_text.push_str(&block);
    if !after.is_empty() {
        if !after.starts_with('\n') {
            new_text.push('\n');
        }
        new_text.push_str(&after);
    }
    // The result must itself be a valid manifest.
    Manifest::parse(manifest.source.path(), &new_text, &|name| std::env::var(name).ok())
        .map_err(|e| CheckError::Usage(format!("the bumped manifest would be invalid:\n{e}")))?;
    Ok((new_text, reference))
}

/// Writes the bumped manifest in place.
pub fn bump_file(path: &Path, target: &str) -> Result<String, CheckError> {
    let manifest = Manifest::load(path).map_err(|e| CheckError::Usage(e.to_string()))?;
    let (text, reference) = bump(&manifest, target)?;
    std::fs::write(path, text)
        .map_err(|e| CheckError::Usage(format!("writing {}: {e}", path.display())))?;
    Ok(reference)
}
