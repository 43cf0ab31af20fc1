//! Whether deed may split on these servers, as the roles it connects with:
//! refused up front, on both sides, with the reason and what to ask for.
//!
//! A split creates a subscription on each side (forward on the target,
//! reverse on the shared database) and copies the service's logins with
//! their password verifiers. Up to PostgreSQL 15 only a superuser may
//! create a subscription; from 16 a member of `pg_create_subscription` may,
//! but only over a connection that authenticates with a password, and a
//! verifier can be read only by a superuser. deed does not yet carry a
//! password for the subscriptions, so both sides need a superuser today.

use deed_pg::{Actor, Client};

use crate::error::{SplitError, query};
use crate::refuse::Refusal;

/// The oldest PostgreSQL major version a split runs on (row filters on
/// publications came with 15).
pub const OLDEST_MAJOR: i32 = 15;

/// The refusals for one side (`side` names it, `shown` is its redacted
/// URL).
pub async fn refusals(
    client: &Client,
    side: &str,
    shown: &str,
) -> Result<Vec<Refusal>, SplitError> {
    let actor = Actor::load(client).await.map_err(SplitError::Database)?;
    let mut out = Vec::new();
    if actor.major() < OLDEST_MAJOR {
        out.push(Refusal {
            at: shown.to_string(),
            reason: format!(
                "the {side} runs PostgreSQL {}: the split's publications filter rows (WHERE), which PostgreSQL 15 brought",
                actor.major()
            ),
            fix: format!("upgrade the {side} to PostgreSQL {OLDEST_MAJOR} or later"),
        });
    }
    if actor.superuser {
        return Ok(out);
    }
    let may_subscribe: bool = client
        .query_one(
            "SELECT to_regrole('pg_create_subscription') IS NOT NULL
                AND pg_has_role(current_user, 'pg_create_subscription', 'USAGE')",
            &[],
        )
        .await
        .map_err(query("reading pg_create_subscription membership"))?
        .get(0);
    let subscribe = if actor.major() <= 15 {
        format!("on PostgreSQL {} only a superuser may create a subscription", actor.major())
    } else if may_subscribe {
        "a subscription created by a role that is not a superuser must authenticate with a password, which deed does not carry yet".into()
    } else {
        format!("{} is not a member of pg_create_subscription", actor.name)
    };
    out.push(Refusal {
        at: shown.to_string(),
        reason: format!(
            "deed connects to the {side} as {}, which is not a superuser ({}): {subscribe}, and the service's logins are copied with their password verifiers, which only a superuser may read",
            actor.name,
            actor.provider.name()
        ),
        fix: format!(
            "run deed split with a superuser's URL for the {side}; on a managed service, which gives no superuser, move the tables with the provider's migration service and then run deed apply on the new instance"
        ),
    });
    Ok(out)
}
