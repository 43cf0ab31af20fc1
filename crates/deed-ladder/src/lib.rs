//! The ladder: every data flow between services (producer → consumer),
//! the rung it stands on, and what blocks the next one. It owns [`Rung`],
//! the flows and `deed status`, built from what each rung crate exposes:
//! contracts and traffic (rungs 0 and 1), capture health and projection
//! progress (rung 2), compare verdicts and cutovers (rung 3).

mod error;
mod flow;
pub mod gather;
mod next;
pub mod observe;
pub mod render;
mod rung;

pub use error::LadderError;
pub use flow::{
    Bounds, DirectUse, ExceptionStatus, Flow, FlowProjection, Observed, Status, status,
};
pub use rung::Rung;
