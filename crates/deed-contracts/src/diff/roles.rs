//! Owner roles and their memberships.

use deed_ident::quote_literal;

use super::{quote_name, quote_role};
use crate::desired::Desired;
use crate::live::Live;
use deed_change::{Change, Phase};

pub(super) fn roles(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    for s in &desired.services {
        let owner = s.owner.as_str();
        match live.roles.get(owner) {
            None => out.push(Change {
                phase: Phase::Roles,
                kind: "create-role",
                object: owner.into(),
                summary: format!(
                    "create role {owner} (NOLOGIN): it will own the relations and api schema of {}",
                    s.service
                ),
                drift: format!("role {owner} is missing"),
                sql: vec![
                    format!("CREATE ROLE {} NOLOGIN", s.owner.quoted()),
                    format!(
                        "COMMENT ON ROLE {} IS {}",
                        s.owner.quoted(),
                        quote_literal(&format!("deed: owner role of service {}", s.service))
                    ),
                ],
                location: None,
                revokes: None,
            }),
            Some(info) if info.login => out.push(Change {
                phase: Phase::Roles,
                kind: "alter-role",
                object: owner.into(),
                summary: format!("make {owner} NOLOGIN: nobody logs in as an owner role"),
                drift: format!("owner role {owner} can log in"),
                sql: vec![format!("ALTER ROLE {} NOLOGIN", s.owner.quoted())],
                location: None,
                revokes: None,
            }),
            Some(_) => {}
        }
        for login in &s.logins {
            if !live.role_exists(login.as_str()) {
                let at = s.login_locations.get(login).cloned().unwrap_or_default();
                out.push(Change {
                    phase: Phase::Blocker,
                    kind: "missing-login",
                    object: login.as_str().into(),
                    summary: format!(
                        "{at}: login role {login} of service {} does not exist; create it first (deed does not manage passwords)",
                        s.service
                    ),
                    drift: format!("{at}: login role {login} of service {} is missing", s.service),
                    sql: Vec::new(),
                    location: Some(at),
                    revokes: None,
                });
            } else if !live.members.get(owner).is_some_and(|m| m.contains(login.as_str())) {
                out.push(Change {
                    phase: Phase::Memberships,
                    kind: "grant-membership",
                    object: format!("{owner} ∋ {login}"),
                    summary: format!("grant {owner} to {login}"),
                    drift: format!("{login} is not a member of {owner}"),
                    sql: vec![format!("GRANT {} TO {}", s.owner.quoted(), login.quoted())],
                    location: None,
                    revokes: None,
                });
            }
        }
        for member in live.members.get(owner).into_iter().flatten() {
            // deed's own role is a member to act as the owner (granted by
            // the plan when it is not a superuser); so is another admin
            // that ran deed before, which could take the role anyway (never
            // another service's login: that is one service writing
            // another's tables).
            let a_login =
                desired.services.iter().any(|o| o.logins.iter().any(|l| l.as_str() == member));
            if s.logins.iter().any(|l| l.as_str() == member)
                || live.is_actor(member)
                || (!a_login && live.could_take(owner, member))
            {
                continue;
            }
            out.push(Change {
                phase: Phase::Memberships,
                kind: "revoke-membership",
                object: format!("{owner} ∋ {member}"),
                summary: format!(
                    "revoke {owner} from {}, which is not a login of {}",
                    quote_name(member),
                    s.service
                ),
                drift: format!(
                    "{} is a member of {owner} but not a login of {}",
                    quote_name(member),
                    s.service
                ),
                sql: vec![format!("REVOKE {} FROM {}", s.owner.quoted(), quote_role(member))],
                location: None,
                revokes: None,
            });
        }
    }
}
