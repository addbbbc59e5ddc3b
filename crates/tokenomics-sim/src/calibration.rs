//! The presets held against public measurements of real GPUs.
//!
//! `calibration/rows.json` at the crate root (embedded here as [`ROWS_JSON`]) holds one row per
//! public measurement: where it was published, the engine and GPU, the model and precision, the
//! lengths and the load, and the figures the source reports. [`replay()`] plays a row's load
//! against an engine in *virtual time*: the live engine's own scheduler (admission, step
//! planning, applying a step; see [`crate::engine`]) runs as a discrete-event simulation whose
//! clock advances by each step's model time instead of sleeping, so the result is exact,
//! deterministic and takes milliseconds. [`compare`] turns a replay into the row's figures, each
//! beside its measured value, with the ratio and whether it lies within [`BAND`]; [`render`]
//! prints them as a table.
//!
//! Every figure in the data carries a status: `fitted` (a preset constant was chosen with it),
//! `checked` (it was not used to choose anything) or `unmet` (the model cannot reach it, and the
//! row says why). A calibration is *consistent* when every fitted or checked figure is within the
//! band and every unmet one is not; `tests/calibration.rs` fails otherwise, so a change to the
//! engine cannot silently undo the fit, and a table that says "unmet" cannot hide a figure that
//! has come within the band.
//!
//! By concern, the code lives in `src/calibrate/` (named apart from the data directory
//! `calibration/` at the crate root): `rows.rs` the data and its checks, `replay.rs` the
//! virtual-time replay and the figures read off it, `report.rs` the comparison and its table.

#[path = "calibrate/replay.rs"]
mod replay;
#[path = "calibrate/report.rs"]
mod report;
#[path = "calibrate/rows.rs"]
mod rows;

pub use replay::{replay, Replay, RequestTiming};
pub(crate) use report::describe_fit;
pub use report::{compare, compare_all, render, Comparison, Format, BAND};
pub use rows::{rows, Figure, Load, Metric, Row, Status, Workload, ROWS_JSON};
