//! `deed contract bump <service>.<contract>`: start the next version as a
//! copy of the latest, right after it in deed.toml, ready to edit.

use std::path::Path;

use deed_manifest::Manifest;
use deed_manifest::edit::{Edit, EditError, write_atomically};

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
    let usage = |e: EditError| CheckError::Usage(e.to_string());
    let mut edit = Edit::of(manifest).map_err(usage)?;
    let reference =
        edit.bump_contract(service_name, contract_name, latest.version).map_err(usage)?;
    // The result must itself be a valid manifest.
    let edited = edit.finish(&|name| std::env::var(name).ok()).map_err(usage)?;
    Ok((edited.text, reference.to_string()))
}

/// Writes the bumped manifest in place.
pub fn bump_file(path: &Path, target: &str) -> Result<String, CheckError> {
    let manifest = Manifest::load(path).map_err(|e| CheckError::Usage(e.to_string()))?;
    let (text, reference) = bump(&manifest, target)?;
    write_atomically(path, &text)
        .map_err(|e| CheckError::Usage(format!("writing {}: {e}", path.display())))?;
    Ok(reference)
}
