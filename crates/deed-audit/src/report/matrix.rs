//! The service × relation matrix every renderer draws.

use std::collections::BTreeSet;

use deed_ident::QualifiedName;

use super::AuditReport;
use crate::catalogue::AccessKind;
use crate::rules::Rule;

/// One service's use of one relation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cell {
    pub read: bool,
    pub write: bool,
    pub star: bool,
    /// Calls of the distinct statements behind the read and the write.
    pub calls: u64,
    /// Rules this use breaks.
    pub rules: BTreeSet<Rule>,
    /// The use goes through a contract view the reader declares.
    pub contract: bool,
}

impl Cell {
    pub fn is_empty(&self) -> bool {
        !self.read && !self.write
    }

    /// `R`, `W`, `RW`, with `*` for SELECT *.
    pub fn code(&self) -> String {
        let mut s = String::new();
        if self.read {
            s.push('R');
        }
        if self.write {
            s.push('W');
        }
        if self.star {
            s.push('*');
        }
        s
    }
}

pub(crate) struct Row {
    pub relation: QualifiedName,
    pub owner: Option<String>,
    pub cells: Vec<Cell>,
}

pub(crate) struct Matrix {
    pub services: Vec<String>,
    pub rows: Vec<Row>,
}

impl Matrix {
    pub fn build(r: &AuditReport<'_>) -> Matrix {
        let c = r.catalogue;
        // Only services that did something: a quiet service is a column of
        // dots. Administrators are summarised apart.
        let services: Vec<String> = c
            .services
            .iter()
            .filter(|s| !crate::attribution::is_admin(s))
            .filter(|s| c.accesses.iter().any(|a| &a.service == *s))
            .cloned()
            .collect();
        let rows = c
            .relations()
            .into_iter()
            .map(|(owner, relation)| {
                let cells = services
                    .iter()
                    .map(|s| {
                        let mut cell = Cell::default();
                        let mut fingerprints = BTreeSet::new();
                        for kind in [AccessKind::Read, AccessKind::Write] {
                            let Some(a) = c.access(s, &relation, kind) else { continue };
                            match kind {
                                AccessKind::Read => cell.read = true,
                                AccessKind::Write => cell.write = true,
                            }
                            cell.star |= a.select_star;
                            cell.contract |= a.contract.is_some();
                            for q in &a.queries {
                                if fingerprints.insert(q.fingerprint.clone()) {
                                    cell.calls += q.calls;
                                }
                            }
                        }
                        cell.rules = r
                            .findings
                            .iter()
                            .filter(|f| f.service == *s && f.relation == relation)
                            .map(|f| f.rule)
                            .collect();
                        cell
                    })
                    .collect();
                Row { relation, owner, cells }
            })
            .collect();
        Matrix { services, rows }
    }
}
