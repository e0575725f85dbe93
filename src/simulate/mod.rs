//! `selfheal simulate`: a labeled fleet history in the interchange format.
//!
//! Two profiles:
//! - `adversarial` (the default, recommended): every knob randomized per
//!   seed, built to break our own assumptions: a dependency graph of upstreams
//!   whose outages (full, partial, slow-burn) hit only their callers, often
//!   minutes after one of them deploys; traffic surges with and without
//!   errors; canary and rolling deploys; late, out-of-order shipping; culprits
//!   in seven languages whose stacks reach the changed line, only its
//!   function, only its file or nothing at all; stackless error lines.
//! - `classic`: the history the earlier figures were measured on, byte for
//!   byte. It mostly measures the assumptions the detector was built on.
//!
//! The ground truth (one JSON line per deploy, [`Truth`]) goes to a separate
//! file. Deterministic for a given seed and profile.
//!
//! # Layout
//! - [`rng`]: the random source and distributions.
//! - [`classic`]: the classic profile, untouched.
//! - [`topology`]: services, upstreams and who calls whom.
//! - [`confounders`]: outages, slow burns, surges, rolling deploys, late shippers.
//! - [`lang`]: per-language source files, stacks, error messages.
//! - [`bugs`]: culprit and clean changes, and the `git diff` they make.
//! - [`output`]: records, and shipping them in arrival order.
//! - [`adversarial`]: the minute-by-minute loop tying those together.
//! - [`truth`]: the label of one deploy.

mod adversarial;
mod bugs;
mod classic;
mod confounders;
mod lang;
mod output;
mod rng;
mod topology;
mod truth;

use std::io::Write;

pub(crate) use truth::Truth;

/// Which kind of history to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Profile {
    /// The old history, byte for byte (figures before the adversarial profile).
    Classic,
    /// Randomized, adversarial confounders and bugs (recommended).
    Adversarial,
}

/// Simulation parameters.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SimArgs {
    /// Number of services.
    #[arg(long, default_value_t = 30)]
    pub(crate) services: usize,
    /// Days of history (deploys happen after the first day).
    #[arg(long, default_value_t = 3.0)]
    pub(crate) days: f64,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
    /// Mean hours between deploys of one service.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) deploy_every_hours: f64,
    /// `adversarial` (randomized confounders and bugs) or `classic` (the old
    /// history, byte for byte).
    #[arg(long, value_enum, default_value_t = Profile::Adversarial)]
    pub(crate) profile: Profile,
}

/// Writes the history to `out` and the labels to `truth`; returns the number
/// of records and of deploys.
pub(crate) fn simulate(
    args: &SimArgs,
    out: &mut impl Write,
    truth: &mut impl Write,
) -> std::io::Result<(usize, usize)> {
    match args.profile {
        Profile::Classic => classic::simulate(args, out, truth),
        Profile::Adversarial => adversarial::simulate(args, out, truth),
    }
}
