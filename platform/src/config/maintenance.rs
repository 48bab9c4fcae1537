//! The scheduled housekeeping (the `maintenance` queue).

use std::time::Duration;

use super::variables::{DAY, Days, Secs, Variable as _, variables};

/// The scheduled housekeeping (the `maintenance` queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceSettings {
    /// How often each task runs; `None` (0) schedules none
    /// (`MAINTENANCE_INTERVAL_SECS`, default an hour).
    pub interval: Option<Duration>,
    /// Finished job records older than this are deleted
    /// (`JOB_RECORD_RETENTION_DAYS`, default 30; whole days).
    pub job_record_retention: Duration,
    /// Replaced and failed photos, and files no photo names, are deleted
    /// once this old (`PHOTO_CLEANUP_GRACE_SECS`, default a day).
    pub photo_grace: Duration,
}

variables! {
    MaintenanceSettings {
        interval: Secs("MAINTENANCE_INTERVAL_SECS", 3600).zero_is_off(),
        job_record_retention: Days("JOB_RECORD_RETENTION_DAYS", 30),
        photo_grace: Secs("PHOTO_CLEANUP_GRACE_SECS", DAY.as_secs()),
    }
}
