//! Exit codes, documented in the README.

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: everything checked out (or was done).
    Ok,
    /// 1: the input is invalid, a policy or the plan refused it (nothing was written), or an
    /// audit found a discrepancy.
    Refused,
    /// 2: the command line was wrong or a required file/tool could not be used.
    Usage,
    /// 3: some work failed (a registry could not be read, a copy failed); what could be done was
    /// done, nothing is tagged half-copied, and running again finishes the job.
    Partial,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(match outcome {
            Outcome::Ok => 0,
            Outcome::Refused => 1,
            Outcome::Usage => 2,
            Outcome::Partial => 3,
        })
    }
}
