//! The update script: what a polling device gets from `update.php` (a GET without `mode`).
//!
//! [`build`] is a pure function of the request, the merged configuration, the device's state,
//! the snippet files, the master's builds and the clock (read once per poll by the caller).
//! It returns the answer and the state to write; it never does I/O. Where the PHP server
//! would do I/O halfway through (asking the master device, a reverse DNS lookup, running the
//! administrator's snippet hook) `build` returns [`Outcome::Need`]; the caller gets the answer
//! and calls `build` again with it in [`Resolved`]. Being deterministic (same input, same
//! clock), the second run takes the same path up to that point. [`build_resolving`] runs
//! that loop with a [`Resolver`], at most [`MAX_ROUNDS`] times.
//!
//! The steps, in the PHP server's order (`steps::run`): rewrite the device's URL when
//! `type/sn/hwid/ip` are missing; the device facts (classes from the type; phase with fast
//! polling while staging; environments `?env=a,b` with one level of `implies`); the
//! `skipnext` cycle; candidate snippets `PHASE-CLASS-ENV.txt` with the `all` wildcards and
//! the serial number as environment; the backup line; the grace period; certificates;
//! queries; time windows; firmware and boot code; HTTPS and trust enforcement; the phase
//! advance; the snippet hook; the snippets with CHECK signature; the closing commands.
//!
//! Files: `candidates` (snippet names), `ctx` (the run's state and output helpers),
//! `steps` (the order and the early steps), `facts` (the device facts and the snippets found,
//! shared by `steps` and `delivery`), `commands` (queries, times), `upgrade` (firmware;
//! `rollouts` for devices in a staged rollout), `identity` (forcetrust), `urlmod` (URL
//! rewriting), `delivery` (hook, CHECK, snippets).

mod candidates;
mod commands;
mod ctx;
mod delivery;
mod facts;
mod identity;
mod rollouts;
mod staged;
mod steps;
mod update_cmd;
mod upgrade;
mod urlmod;

pub use crate::identity::Refusal;
pub use candidates::candidates;
pub use ctx::url_dirname;
pub use identity::{IdentityError, Verified, verify_identity};
pub use urlmod::apply_urlmod;

use crate::certs::{CertFiles, FileOp};
use crate::config::Config;
use crate::firmware::MasterResolution;
use crate::php::Args;
use crate::request::ConnInfo;
use crate::snippets::SnippetSource;
use crate::state::DeviceState;
use crate::state::Loaded;
use ctx::{Ctx, Stop};

/// The administrator's snippet hook answer (PHP's `CustomUpdateSnippet`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookAnswer {
    /// Lines sent before the standard snippets.
    pub pre: Vec<Vec<u8>>,
    /// Lines sent after them.
    pub post: Vec<Vec<u8>>,
    /// Whether the standard snippets are sent.
    pub standard: bool,
    /// Why the hook failed (its answer is then empty and the standard snippets are sent).
    pub error: Option<String>,
}

/// Answers to earlier [`Need`]s.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub master: Option<MasterResolution>,
    pub rdns: Option<Option<String>>,
    pub hook: Option<HookAnswer>,
}

/// Something `build` needs from the outside world before it can go on.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    /// The master device's builds ([`firmware::MasterSource::resolve`]).
    Master,
    /// The reverse DNS name of this address.
    Rdns(String),
    /// The snippet hook's answer for a device in this state.
    Hook(Box<DeviceState>),
}

/// The inputs of one poll.
pub struct PollInput<'a> {
    pub config: &'a Config,
    pub args: &'a Args,
    pub conn: &'a ConnInfo,
    /// URL of `update.php` as the device reached it (`http://host/prefix/update.php`).
    pub script_url: &'a str,
    /// The device's stored state (ignored when state tracking is off or there is no `sn`).
    pub state: &'a Loaded,
    pub snippets: &'a (dyn SnippetSource + Sync),
    pub certs: &'a CertFiles,
    /// Whether a snippet hook is configured.
    pub hook_configured: bool,
    /// The clock (unix seconds), read once per poll.
    pub now: i64,
    /// The state of each configured rollout as this device sees it (by rollout id; see
    /// `rollout::RolloutStore::for_device`). Empty without `<rollouts>`.
    pub rollouts: &'a [(String, crate::rollout::RolloutState)],
    /// The kept previous versions of the snippet files staged by rollouts, by file name
    /// (`rollout::kept`). Empty without snippet rollouts.
    pub previous: &'a crate::rollout::kept::Previous,
}

/// The result of a poll.
#[derive(Debug, Clone, PartialEq)]
pub struct PollOutput {
    pub body: Vec<u8>,
    /// The device state to write, if any.
    pub state: Option<DeviceState>,
    pub file_ops: Vec<FileOp>,
    /// What the poll changes in the rollouts (rollout id, change).
    pub rollout_changes: Vec<(String, crate::rollout::Change)>,
    /// Set when the certificate did not prove the serial under forcetrust: then the body
    /// has no commands, and there are no file changes, no rollout changes and no state change
    /// beyond what `identity::guard_state` allows.
    pub refused: Option<Refusal>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(Box<PollOutput>),
    Need(Need),
}

impl PollOutput {
    /// The answer when the script could not be built (nothing is written).
    pub fn internal_error() -> PollOutput {
        PollOutput {
            body: b"# internal error - exit\r\n".to_vec(),
            state: None,
            file_ops: Vec::new(),
            rollout_changes: Vec::new(),
            refused: None,
        }
    }
}

/// Builds the answer to a poll, given the answers to earlier needs. See the module
/// documentation.
pub fn build(inp: &PollInput<'_>, resolved: &Resolved) -> Outcome {
    let mut ctx = Ctx::new(inp, resolved);
    let r = steps::run(&mut ctx);
    match r {
        Err(Stop::Need(n)) => Outcome::Need(n),
        Ok(()) | Err(Stop::Exit) => {
            let state = ctx.ans.take_state_to_write();
            Outcome::Done(Box::new(match ctx.refused.take() {
                None => PollOutput {
                    state,
                    body: ctx.ans.out,
                    file_ops: ctx.file_ops,
                    rollout_changes: ctx.rollout_changes,
                    refused: None,
                },
                Some((reason, forbidden)) => PollOutput {
                    state: crate::identity::guard_state(inp.state, state),
                    body: crate::identity::strip_commands(&ctx.ans.out, ctx.allowed.take()),
                    file_ops: Vec::new(),
                    rollout_changes: Vec::new(),
                    refused: Some(Refusal { reason, forbidden }),
                },
            }))
        }
    }
}

/// How often [`build`] runs for one poll at most: once, and once more after each kind of
/// [`Need`] (master, reverse DNS, hook; each is answered once, so the script never needs
/// more).
pub const MAX_ROUNDS: usize = 4;

/// Why [`build_resolving`] gave up.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReplayError {
    #[error("the update script still needs {0:?} after {MAX_ROUNDS} rounds")]
    TooManyRounds(Need),
}

/// Answers the needs of [`build`] (the shell's I/O).
pub trait Resolver {
    /// The master device's builds.
    fn master(&self) -> impl Future<Output = MasterResolution> + Send;
    /// The reverse DNS name of an address.
    fn rdns(&self, ip: &str) -> impl Future<Output = Option<String>> + Send;
    /// The snippet hook's answer for a device in this state.
    fn hook(&self, state: &DeviceState) -> impl Future<Output = HookAnswer> + Send;
}

/// Runs [`build`] until the poll is answered, resolving its needs in between; every round
/// sees the same input (and so the same clock).
pub async fn build_resolving(
    inp: &PollInput<'_>,
    resolver: &(impl Resolver + Sync),
) -> Result<PollOutput, ReplayError> {
    replay(|resolved| build(inp, resolved), resolver).await
}

/// The replay loop of [`build_resolving`], with `build` replaceable for tests.
async fn replay(
    mut build: impl FnMut(&Resolved) -> Outcome,
    resolver: &(impl Resolver + Sync),
) -> Result<PollOutput, ReplayError> {
    let mut resolved = Resolved::default();
    let mut rounds = 0;
    loop {
        rounds += 1;
        let need = match build(&resolved) {
            Outcome::Done(out) => return Ok(*out),
            Outcome::Need(need) if rounds >= MAX_ROUNDS => {
                return Err(ReplayError::TooManyRounds(need));
            }
            Outcome::Need(need) => need,
        };
        match need {
            Need::Master => resolved.master = Some(resolver.master().await),
            Need::Rdns(ip) => resolved.rdns = Some(resolver.rdns(&ip).await),
            Need::Hook(state) => resolved.hook = Some(resolver.hook(&state).await),
        }
    }
}

#[cfg(test)]
mod tests;
