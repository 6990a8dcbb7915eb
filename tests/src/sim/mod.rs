//! The deterministic cluster simulator. See docs/simulation.md.
//!
//! - [`api`]: what the simulator needs from a node ([`api::SimNode`]) and its machine
//!   ([`api::Hardware`]).
//! - [`world`]: the event loop over [`queue`], [`network`], [`faults`] (and
//!   [`midsend`]: crashes between two of a step's writes), [`clock`], [`workload`] and
//!   [`trace`].
//! - [`run`]: one seed from start to verdict; [`report`]: totals over seeds.
//! - [`toy`]: a small ABD register cluster, so all of the above is tested without
//!   `ringkv_core::node`; [`broken`]: a coordinator that answers reads from a cache,
//!   to show the checker catches real-run violations.
//! - [`sets`]: the eventual-mode set workload (read, merge siblings, add, write back).
//! - [`layouts`]: the layout check (every node agrees on what each layout version is).
//! - `cluster`: the glue to `ringkv_core::node::Node`; [`fail_stop`]: its host's rule
//!   after a failed sync (say nothing until restarted).
//! - [`mutations`]: `Node` with a deliberate bug switched on, and catch rates.

pub mod api;
pub mod broken;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod fail_stop;
pub mod faults;
pub mod layouts;
pub mod midsend;
pub mod mutations;
pub mod network;
pub mod queue;
pub mod racy;
pub mod report;
pub mod run;
pub mod scans;
pub mod sets;
pub mod toy;
pub mod trace;
pub mod updates;
pub mod workload;
pub mod world;

pub use config::SimConfig;
pub use error::SimError;
pub use report::Summary;
pub use run::{run_seed, Finding, FindingKind, SeedReport, SetFinding, SetFindingKind};
