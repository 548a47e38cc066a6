//! Exit status of `check` (fixed, operators script on them) and of usage errors, for
//! every subcommand.

pub const COMPLIANT: u8 = 0;
pub const NOT_COMPLIANT: u8 = 1;
pub const TEMPORARY_OR_USAGE: u8 = 2;
/// Standard output was closed before everything was written (`check … | head -1`):
/// 128 + SIGPIPE, the status a shell shows for a command a closed pipe ended.
pub const OUTPUT_CLOSED: u8 = 141;
