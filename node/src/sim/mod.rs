//! A province to try dxmesh on: the synthetic generator of department
//! exports and expected results ([`synth`]) and the page `dxmesh demo`
//! writes ([`report`]). The demo itself, which drives seven node processes
//! through the `dxmesh` command, is a command (`cli::demo`).

pub mod report;
pub mod synth;
