//! Phase 3: every table proven equal to its copy, and the proof recorded.

use super::*;

/// Phase 3: every table compared with its copy at fences. A clean proof is
/// recorded; the cutover needs one.
pub async fn prove_phase(split: &mut Split, timeout: Duration) -> Result<Proof, SplitError> {
    let name = split.name().to_string();
    if split.live_on_target() {
        return Err(SplitError::NotNow(format!(
            "{name} is cut over: nothing to prove until a rollback"
        )));
    }
    if !replicate::subscription_exists(&split.target, &name, SplitDirection::Forward).await?
        || split.phase().is_none_or(|p| p < Phase::Following)
    {
        return Err(SplitError::NotNow(format!(
            "{name} is not copied yet: run `deed split {name} --to URL --copy` first"
        )));
    }
    let proof = prove(&split.shared, &split.target, &name, &split.found, timeout).await?;
    let json = serde_json::to_string(&proof).expect("a proof serialises");
    if proof.equal {
        state::record_phase(&split.shared, &name, &split.target_shown, Phase::Proven).await?;
    }
    split
        .shared
        .execute(
            "UPDATE deed.splits SET proof = $2::text::jsonb, updated_at = now() WHERE service = $1",
            &[&name, &json],
        )
        .await
        .map_err(query("recording the proof"))?;
    split.reload().await?;
    Ok(proof)
}
