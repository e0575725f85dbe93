//! `selfheal simulate`: a labeled fleet history in the interchange format.
//!
//! Three profiles:
//! - `adversarial` (the default, recommended): every knob randomized per
//!   seed, built to break our own assumptions: a dependency graph of upstreams
//!   whose outages (full, partial, slow-burn) hit only their callers, often
//!   minutes after one of them deploys; traffic surges with and without
//!   errors; canary and rolling deploys; late, out-of-order shipping; culprits
//!   in seven languages whose stacks reach the changed line, only its
//!   function, only its file or nothing at all; stackless error lines.
//! - `classic`: the history the earlier figures were measured on, byte for
//!   byte. It mostly measures the assumptions the detector was built on.
//! - `golden`: golden signals (latency histograms, 5xx counts, memory and
//!   CPU per instance) with latency, 5xx and saturation culprits among
//!   adversarial confounders; no error logs (see [`golden`]).
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
//! - [`golden`]: the golden-signal profile (a folder of its own).
//! - [`truth`]: the label of one deploy.

mod adversarial;
mod bugs;
mod classic;
mod confounders;
mod golden;
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
    /// Golden signals: latency, 5xx and saturation regressions among
    /// adversarial confounders.
    Golden,
}

/// Simulation parameters, resolved (profile defaults applied).
#[derive(Debug, Clone)]
pub(crate) struct SimArgs {
    /// Number of services.
    pub(crate) services: usize,
    /// Days of history (deploys happen after the first day).
    pub(crate) days: f64,
    /// Random seed.
    pub(crate) seed: u64,
    /// Mean hours between deploys of one service.
    pub(crate) deploy_every_hours: f64,
    /// Which history.
    pub(crate) profile: Profile,
}

/// The command line of `selfheal simulate`: sizes left out take the
/// profile's defaults ([`SimCli::resolve`]).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SimCli {
    /// Number of services [default: 30; golden: 20].
    #[arg(long)]
    pub(crate) services: Option<usize>,
    /// Days of history (deploys happen after the first day; golden: in the
    /// last three days only) [default: 3; golden: 10].
    #[arg(long)]
    pub(crate) days: Option<f64>,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
    /// Mean hours between deploys of one service.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) deploy_every_hours: f64,
    /// `adversarial` (randomized confounders and bugs), `classic` (the old
    /// history, byte for byte) or `golden` (latency, 5xx and saturation).
    #[arg(long, value_enum, default_value_t = Profile::Adversarial)]
    pub(crate) profile: Profile,
}

impl SimCli {
    /// The parameters, with the profile's defaults for what was left out.
    pub(crate) fn resolve(&self) -> SimArgs {
        let (services, days) = match self.profile {
            Profile::Golden => (golden::SERVICES, golden::DAYS),
            Profile::Classic | Profile::Adversarial => (30, 3.0),
        };
        SimArgs {
            services: self.services.unwrap_or(services),
            days: self.days.unwrap_or(days),
            seed: self.seed,
            deploy_every_hours: self.deploy_every_hours,
            profile: self.profile,
        }
    }
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
        Profile::Golden => golden::simulate(args, out, truth),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a 64 of the history and of the truth.
    fn fingerprint(args: &SimArgs) -> (u64, u64) {
        let (mut out, mut truth) = (Vec::new(), Vec::new());
        simulate(args, &mut out, &mut truth).unwrap();
        let fnv = |b: &[u8]| {
            b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
                (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3)
            })
        };
        (fnv(&out), fnv(&truth))
    }

    #[test]
    fn classic_and_adversarial_histories_are_pinned() {
        // Values from the binary before the golden profile existed: adding a
        // profile (and optional truth fields) must not move these streams.
        let classic = SimArgs {
            services: 8,
            days: 1.5,
            seed: 7,
            deploy_every_hours: 10.0,
            profile: Profile::Classic,
        };
        assert_eq!(
            fingerprint(&classic),
            (0x3bb4_ae5b_e21b_79c7, 0x5f7b_73ac_5470_0397)
        );
        let adversarial = SimArgs {
            services: 6,
            seed: 5,
            profile: Profile::Adversarial,
            ..classic
        };
        assert_eq!(
            fingerprint(&adversarial),
            (0x9b5a_af42_5e04_64a1, 0x4887_3d01_46c1_746f)
        );
    }

    #[test]
    fn profile_defaults_apply_only_when_sizes_are_left_out() {
        let cli = SimCli {
            services: None,
            days: None,
            seed: 1,
            deploy_every_hours: 10.0,
            profile: Profile::Golden,
        };
        let a = cli.resolve();
        assert_eq!((a.services, a.days), (20, 10.0));
        let a = SimCli {
            profile: Profile::Adversarial,
            ..cli.clone()
        }
        .resolve();
        assert_eq!((a.services, a.days), (30, 3.0));
        let a = SimCli {
            services: Some(5),
            days: Some(2.0),
            ..cli
        }
        .resolve();
        assert_eq!((a.services, a.days), (5, 2.0));
    }
}
