//! A province to try dxmesh on: the synthetic generator of department
//! exports and expected results ([`synth`]), `dxmesh demo` on a local mesh
//! of seven node processes ([`demo`]) and the page it writes ([`report`]).

pub mod demo;
pub mod report;
pub mod synth;
