//! What to generate: for one service, the contract versions it reads and
//! the events it consumes; for all, every contract version and event in
//! the manifest. Always in the same order (service, name, version).

use deed_manifest::{ContractRef, EventRef, Manifest};

use crate::error::GenerateError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    pub contracts: Vec<ContractRef>,
    pub events: Vec<EventRef>,
}

pub fn choose(manifest: &Manifest, service: Option<&str>) -> Result<Choice, GenerateError> {
    let mut choice = match service {
        Some(name) => {
            let s = manifest.service(name).ok_or_else(|| {
                let known: Vec<&str> = manifest.services.iter().map(|s| s.name.as_str()).collect();
                GenerateError::Setup(format!(
                    "no service {name:?} in {} (it has {})",
                    manifest.source.path().display(),
                    known.join(", ")
                ))
            })?;
            Choice { contracts: s.reads.clone(), events: s.consumes.clone() }
        }
        None => Choice {
            contracts: manifest.contract_views().map(|(s, c, _)| c.reference(&s.name)).collect(),
            events: manifest
                .services
                .iter()
                .flat_map(|s| {
                    s.events
                        .iter()
                        .map(|e| EventRef { service: s.name.clone(), event: e.name.clone() })
                })
                .collect(),
        },
    };
    choice.contracts.sort();
    choice.contracts.dedup();
    choice.events.sort();
    choice.events.dedup();
    Ok(choice)
}
