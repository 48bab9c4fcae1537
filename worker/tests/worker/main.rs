//! Black-box tests of the `worker` binary: real processes, real signals.

mod failures;
mod shutdown;
