//! The conditions, as a pure function of what was measured: which incidents
//! should be open now, each with the sentence the team will read.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::owners::incidents::Kind;
use catalogue::QueueName;
use platform::config::AlertSettings;

/// Below this many finished jobs in the window, a failure ratio is noise
/// (one failure of one job is 100%).
pub const RATIO_MIN_FINISHED: u64 = 10;

/// What one queue looked like in Redis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueFigures {
    /// Jobs ready to run (not delayed, not in a paused queue).
    pub waiting: u64,
    /// How long the oldest of them has waited.
    pub oldest_waiting: Option<Duration>,
    /// Workers consuming the queue (BullMQ's registry).
    pub consumers: usize,
    /// Why the queue is held by a refused credential, if it is.
    pub misconfigured: Option<String>,
}

/// One queue's finished jobs within the failure window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Finished {
    /// Completed or failed for good.
    pub finished: u64,
    /// Failed for good.
    pub failed: u64,
}

/// Everything one evaluation measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Each queue Redis answered for; a queue missing here is unknown, and
    /// its Redis-measured incidents stay as they are.
    pub queues: HashMap<QueueName, QueueFigures>,
    /// Each queue's finished jobs in the window (Postgres).
    pub finished: HashMap<QueueName, Finished>,
    /// Records not yet in Redis, and the oldest one's age.
    pub outbox: (u64, Option<Duration>),
}

/// An incident that should be open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The condition.
    pub kind: Kind,
    /// The queue, or `""` for the outbox.
    pub queue: &'static str,
    /// The figure, the threshold and what it means, in one sentence.
    pub summary: String,
}

impl Snapshot {
    /// Whether `kind` on `queue` was measured by this snapshot, so an
    /// incident of it may be closed when it is not found. A queue Redis did
    /// not answer for is not known to be healthy.
    pub fn measured(&self, kind: Kind, queue: &str) -> bool {
        match kind {
            Kind::Failures | Kind::Outbox => true,
            Kind::NoConsumer | Kind::OldestWaiting | Kind::Misconfigured => queue
                .parse::<QueueName>()
                .is_ok_and(|queue| self.queues.contains_key(&queue)),
        }
    }
}

/// The incidents `snapshot` shows under `settings`' thresholds (each 0 is off).
pub fn findings(snapshot: &Snapshot, settings: &AlertSettings) -> Vec<Finding> {
    let mut found = Vec::new();
    for &queue in QueueName::ALL {
        let name = queue.as_str();
        if let Some(figures) = snapshot.queues.get(&queue) {
            found.extend(queue_findings(name, figures, settings));
        }
        if let Some(finished) = snapshot.finished.get(&queue)
            && let Some(summary) = failures(name, *finished, settings)
        {
            found.push(Finding {
                kind: Kind::Failures,
                queue: name,
                summary,
            });
        }
    }
    let (pending, oldest) = snapshot.outbox;
    if let Some(oldest) = oldest
        && over(oldest, settings.outbox)
    {
        found.push(Finding {
            kind: Kind::Outbox,
            queue: "",
            summary: format!(
                "the outbox holds {pending} job record{} that did not reach Redis, \
                 the oldest for {} (threshold {})",
                plural(pending),
                human(oldest),
                human(settings.outbox),
            ),
        });
    }
    found
}

fn queue_findings(
    name: &'static str,
    figures: &QueueFigures,
    settings: &AlertSettings,
) -> Vec<Finding> {
    let mut found = Vec::new();
    let finding = |kind, summary| Finding {
        kind,
        queue: name,
        summary,
    };
    if let Some(reason) = &figures.misconfigured {
        found.push(finding(
            Kind::Misconfigured,
            format!("{name} is paused: a provider refused our credentials ({reason})"),
        ));
        // Its jobs wait because of that; one incident says so.
        return found;
    }
    let Some(oldest) = figures.oldest_waiting.filter(|_| figures.waiting > 0) else {
        return found;
    };
    let waiting = figures.waiting;
    if figures.consumers == 0 {
        if over(oldest, settings.no_consumer) {
            found.push(finding(
                Kind::NoConsumer,
                format!(
                    "no worker is consuming {name}: {waiting} job{} waiting, the oldest for {} \
                     (threshold {})",
                    plural(waiting),
                    human(oldest),
                    human(settings.no_consumer),
                ),
            ));
        }
    } else if over(oldest, settings.oldest_waiting) {
        found.push(finding(
            Kind::OldestWaiting,
            format!(
                "{name} is not keeping up: its oldest waiting job has waited {} \
                 (threshold {}), {waiting} waiting, {} worker{} consuming",
                human(oldest),
                human(settings.oldest_waiting),
                figures.consumers,
                plural(figures.consumers as u64),
            ),
        ));
    }
    found
}

fn failures(name: &str, finished: Finished, settings: &AlertSettings) -> Option<String> {
    let Finished { finished, failed } = finished;
    let window = human(settings.failure_window);
    if settings.failed_jobs > 0 && failed > settings.failed_jobs {
        return Some(format!(
            "{name}: {failed} jobs failed for good in the last {window} (threshold {})",
            settings.failed_jobs
        ));
    }
    let ratio = failed as f64 / finished.max(1) as f64;
    (settings.failed_ratio > 0.0 && finished >= RATIO_MIN_FINISHED && ratio > settings.failed_ratio)
        .then(|| {
            format!(
                "{name}: {failed} of {finished} finished jobs failed for good in the last \
                 {window} ({:.0}%, threshold {:.0}%)",
                ratio * 100.0,
                settings.failed_ratio * 100.0
            )
        })
}

/// `figure` is past `threshold`, which 0 turns off.
fn over(figure: Duration, threshold: Duration) -> bool {
    !threshold.is_zero() && figure > threshold
}

fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// `3 h 2 min`, `4 min 5 s`, `12 s`: whole seconds, two units at most.
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    if h > 0 {
        let _ = write!(text, "{h} h");
        if m > 0 {
            let _ = write!(text, " {m} min");
        }
    } else if m > 0 {
        let _ = write!(text, "{m} min");
        if s > 0 {
            let _ = write!(text, " {s} s");
        }
    } else {
        let _ = write!(text, "{s} s");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AlertSettings {
        platform::config::Settings::from_lookup(|key| {
            (key == "DATABASE_URL").then(|| "postgres://localhost/x".to_owned())
        })
        .expect("defaults")
        .alerts
    }

    fn waiting(consumers: usize, oldest_secs: u64) -> QueueFigures {
        QueueFigures {
            waiting: 3,
            oldest_waiting: Some(Duration::from_secs(oldest_secs)),
            consumers,
            misconfigured: None,
        }
    }

    fn kinds(snapshot: &Snapshot) -> Vec<(Kind, &'static str)> {
        findings(snapshot, &settings())
            .into_iter()
            .map(|finding| (finding.kind, finding.queue))
            .collect()
    }

    fn one_queue(figures: QueueFigures) -> Snapshot {
        Snapshot {
            queues: HashMap::from([(QueueName::WelcomeEmail, figures)]),
            ..Snapshot::default()
        }
    }

    #[test]
    fn waiting_jobs_without_a_consumer_open_one_incident_once_past_the_threshold() {
        assert_eq!(kinds(&one_queue(waiting(0, 119))), []);
        assert_eq!(
            kinds(&one_queue(waiting(0, 121))),
            [(Kind::NoConsumer, "welcome-email")]
        );
        let mut idle = waiting(0, 500);
        idle.waiting = 0;
        assert_eq!(
            kinds(&one_queue(idle)),
            [],
            "nothing waits: nothing to consume"
        );
    }

    #[test]
    fn a_slow_queue_with_consumers_is_not_keeping_up_and_a_held_one_is_only_held() {
        assert_eq!(
            kinds(&one_queue(waiting(2, 601))),
            [(Kind::OldestWaiting, "welcome-email")]
        );
        let mut held = waiting(0, 9999);
        held.misconfigured = Some("401".into());
        assert_eq!(
            kinds(&one_queue(held)),
            [(Kind::Misconfigured, "welcome-email")]
        );
    }

    #[test]
    fn failures_alert_past_the_count_or_the_ratio_of_enough_finished_jobs() {
        let failed = |finished, failed| Snapshot {
            finished: HashMap::from([(QueueName::ImageResize, Finished { finished, failed })]),
            ..Snapshot::default()
        };
        assert_eq!(kinds(&failed(100, 10)), []);
        assert_eq!(kinds(&failed(100, 11)), [(Kind::Failures, "image-resize")]);
        assert_eq!(kinds(&failed(10, 6)), [(Kind::Failures, "image-resize")]);
        assert_eq!(kinds(&failed(9, 6)), [], "too few to judge a ratio");
    }

    #[test]
    fn the_outbox_alerts_on_its_oldest_record_and_zero_turns_a_condition_off() {
        let stuck = Snapshot {
            outbox: (4, Some(Duration::from_secs(121))),
            ..Snapshot::default()
        };
        let found = findings(&stuck, &settings());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].summary,
            "the outbox holds 4 job records that did not reach Redis, the oldest for \
             2 min 1 s (threshold 2 min)"
        );
        let mut off = settings();
        off.outbox = Duration::ZERO;
        assert_eq!(findings(&stuck, &off), []);
    }

    #[test]
    fn an_unmeasured_queue_is_not_known_to_be_healthy() {
        let snapshot = one_queue(waiting(1, 1));
        assert!(snapshot.measured(Kind::NoConsumer, "welcome-email"));
        assert!(!snapshot.measured(Kind::NoConsumer, "image-resize"));
        assert!(snapshot.measured(Kind::Failures, "image-resize"));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(12)), "12 s");
        assert_eq!(human(Duration::from_secs(245)), "4 min 5 s");
        assert_eq!(human(Duration::from_secs(3600 * 3 + 120)), "3 h 2 min");
    }
}
