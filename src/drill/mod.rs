//! Restore drills: restore the newest set into scratch targets, check what was restored
//! against the facts recorded at backup time, time it against the recovery objectives,
//! report, and clean up whatever happened. The check evaluation is shared with the `check`
//! step kind.

mod check_result;
pub mod evaluate;
pub mod procedure;
pub mod report;
pub mod sql_count;

pub use check_result::CheckResult;
pub use evaluate::Target;
pub use report::DrillReport;
