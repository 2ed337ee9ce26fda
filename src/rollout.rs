//! Staged rollouts (our extension, `<rollouts>` in the user configuration): devices in a
//! rollout's scope get its firmware and boot code, or the new versions of its snippet files
//! ([`staged`]), wave by wave; the next wave opens when enough of the current one succeeded
//! and its soak time passed; the rollout halts when too many of a wave failed.
//!
//! The core is pure: [`config`] (the `<rollout>` elements), [`wave`] (a device's wave from a
//! stable hash of its serial), [`state`] (what happened so far, its changes and its file
//! form), [`decide`] (what one polling device gets, and how the rollout advances with time),
//! [`summary`] (counts per rollout and wave, the phase and why it is not moving, for the
//! status page, the API and metrics). A wave's population (who is counted for it) is taken
//! from the server's device index when the wave opens ([`Fleet`]).
//! The shell is [`store`]: the states in memory, loaded from and written behind to
//! `rollouts/ID.xml` under the installation root; [`kept`]: the previous versions of staged
//! snippet files; [`plan`] is the `rollout-plan` command.
//!
//! Without `<rollouts>` nothing of this runs and every answer is the PHP server's.

pub mod decide;
pub mod kept;
pub mod plan;
pub mod staged;
pub mod state;
pub mod store;
pub mod summary;
pub mod wave;

#[cfg(test)]
mod sim;

/// The `<rollouts>` section is read with the rest of the configuration.
pub use crate::config::rollouts as config;
pub use crate::config::rollouts::{Rollout, RolloutError};
pub use decide::{Decision, DeviceFacts, Fleet, Known, NoFleet, advance, control, decide};
pub use state::{Action, Change, RolloutState};
pub use store::RolloutStore;
pub use summary::{Phase, RolloutSummary, WaveSummary, summarize};
pub use wave::{percentile, wave_of};
