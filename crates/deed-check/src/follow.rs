//! Running the migrations statement by statement and watching what each
//! does to the contracts. A statement a contract view blocks is reported,
//! then stepped past as if the view were not there (the view is dropped
//! and the file's open transaction replayed), so one run reports every
//! finding of every file.

use std::collections::BTreeSet;

use deed_ident::QualifiedName;
use deed_pg::PgError;

use crate::error::CheckError;
use crate::finding::BreakKind;
use crate::judge::compare;
use crate::migration::{Statement, Txn};
use crate::session::MigrationSession;
use crate::signature::{Exposed, Signature, signatures};
use crate::tracked::{DATA_COMMANDS, RELATION_DDL, Tracked, blocked_by, dependency_closure};

/// What following the migrations found.
pub(crate) struct Followed<'m> {
    /// (tracked contract, statement, kind, message), each once.
    pub raw: Vec<(usize, &'m Statement, BreakKind, String)>,
    /// Statements checked (each once, however often a transaction was replayed).
    pub statements: usize,
    pub last_ddl: Option<&'m Statement>,
    pub written: BTreeSet<QualifiedName>,
    pub current: Vec<Signature>,
    /// Contracts dropped to step past a statement they blocked: their
    /// finding is made, and nothing more is said of them.
    pub retired: BTreeSet<usize>,
    /// A statement that still failed with the contracts out of the way,
    /// and its error: nothing after it was checked.
    pub stopped: Option<(&'m Statement, String)>,
}

pub(crate) async fn follow<'m>(
    session: &MigrationSession,
    tracked: &[Tracked],
    statements: &[&'m Statement],
    initial: &[Signature],
) -> Result<Followed<'m>, CheckError> {
    let client = session.client();
    let views: Vec<QualifiedName> = tracked.iter().map(|t| t.view.clone()).collect();
    let exposed: Vec<Vec<Exposed>> = tracked.iter().map(|t| t.exposed.clone()).collect();
    let mut closure = dependency_closure(client, &views).await?;
    let mut out = Followed {
        raw: Vec::new(),
        statements: 0,
        last_ddl: None,
        written: BTreeSet::new(),
        current: initial.to_vec(),
        retired: BTreeSet::new(),
        stopped: None,
    };
    let mut seen: BTreeSet<(usize, usize, BreakKind)> = BTreeSet::new();
    let mut open_txn: Option<usize> = None;
    let mut replay_until: Option<usize> = None;
    let mut i = 0;
    while i < statements.len() {
        let st = statements[i];
        out.statements = out.statements.max(i + 1);
        if let Err(e) = session.run(&st.text).await {
            if replay_until.is_some_and(|end| i <= end) {
                // It failed again with the blocking views gone: something
                // else stands in its way, on the live database too.
                let error = PgError::query("", e).to_string().trim_start_matches(": ").to_string();
                out.stopped = Some((st, error));
                break;
            }
            let blocked: Vec<usize> = blocked_by(client, &e, st, tracked)
                .await?
                .into_iter()
                .filter(|b| !out.retired.contains(b))
                .collect();
            if blocked.is_empty() {
                return Err(CheckError::Input {
                    location: format!("{}:{}:{}", st.file, st.line, st.column),
                    message: format!(
                        "the migration fails against the current schema: {}",
                        PgError::query("", e).to_string().trim_start_matches(": ")
                    ),
                });
            }
            let error = PgError::query("", e).to_string().trim_start_matches(": ").to_string();
            for b in blocked {
                let message = format!(
                    "fails because {} depends on what it changes: {error}",
                    tracked[b].view
                );
                if seen.insert((b, i, BreakKind::Blocked)) {
                    out.raw.push((b, st, BreakKind::Blocked, message));
                }
                retire(session, tracked, b, &mut out.retired).await?;
            }
            // The failure rolled the file's transaction back: run it again
            // from its BEGIN, now without the views in the way.
            replay_until = Some(i);
            i = open_txn.take().unwrap_or(i);
            continue;
        }
        match st.transaction {
            Txn::Begin => open_txn = Some(i),
            Txn::End => open_txn = None,
            Txn::None => {}
        }
        let ddl = !DATA_COMMANDS.contains(&st.command.as_str());
        if ddl {
            out.last_ddl = Some(st);
            out.written.extend(st.writes.iter().cloned());
        }
        // Only DDL can change a signature, and DDL on relations nothing
        // published depends on cannot: those statements are skipped.
        let relevant = ddl
            && (st.writes.is_empty()
                || !RELATION_DDL.contains(&st.command.as_str())
                || st.writes.iter().any(|w| closure.contains(w)));
        if relevant {
            let next = signatures(client, &views, &exposed).await?;
            if next.iter().zip(&out.current).any(|(a, b)| a.viewdef != b.viewdef) {
                closure = dependency_closure(client, &views).await?;
            }
            for (t_i, t) in tracked.iter().enumerate() {
                if out.retired.contains(&t_i) {
                    continue;
                }
                for (kind, message) in compare(t, &out.current[t_i], &next[t_i], st) {
                    if seen.insert((t_i, i, kind)) {
                        out.raw.push((t_i, st, kind, message));
                    }
                }
            }
            out.current = next;
        }
        i += 1;
    }
    // A migration that leaves its transaction open ends here; what it did
    // is what the contracts are checked against.
    let _ = client.batch_execute("COMMIT").await;
    Ok(out)
}

/// Drops a contract view that blocked a statement, and marks it (and any
/// tracked view that went with it) as no longer followed.
async fn retire(
    session: &MigrationSession,
    tracked: &[Tracked],
    which: usize,
    retired: &mut BTreeSet<usize>,
) -> Result<(), CheckError> {
    let client = session.client();
    let view = tracked[which].view.quoted();
    client
        .batch_execute(&format!("DROP VIEW IF EXISTS {view} CASCADE"))
        .await
        .map_err(|e| PgError::query(format!("stepping past {view}"), e))?;
    retired.insert(which);
    let names: Vec<String> = tracked.iter().map(|t| t.view.quoted()).collect();
    let gone: Vec<bool> = client
        .query_one("SELECT coalesce(array_agg(to_regclass(x) IS NULL ORDER BY n), '{}') FROM unnest($1::text[]) WITH ORDINALITY u(x, n)", &[&names])
        .await
        .map_err(|e| PgError::query("looking for contract views", e))?
        .get(0);
    retired.extend(gone.iter().enumerate().filter(|(_, g)| **g).map(|(i, _)| i));
    Ok(())
}
