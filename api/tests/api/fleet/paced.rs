//! Users started on a clock (`load.rs`'s rate run): signups are sent at a
//! fixed rate whatever the answers' pace (open loop; only the number of
//! users in flight is bounded), each user confirms their address once the
//! confirmation email is out, and every `photo_every`th uploads a photo.
//! Redis's memory and each queue's oldest waiting job are sampled
//! meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalogue::QueueName;
use queue::JobQueues;
use serde_json::{Value, json};
use testkit::images::{jpeg, photo};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::{Fleet, email, job_ids, name};

/// How often Redis and the queues are sampled, and the confirmation
/// emails' jobs polled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long one user may take from signup to upload before the run
/// counts them as failed.
const USER_DEADLINE: Duration = Duration::from_secs(120);

/// What to send.
pub struct Pace {
    /// Signups a second.
    pub rate: f64,
    /// For how long.
    pub duration: Duration,
    /// Users in flight at most (signed up, not yet done); the pacer waits
    /// for one to finish past it, which the achieved rate shows.
    pub in_flight: usize,
    /// Every this many users uploads a photo.
    pub photo_every: usize,
}

/// One sample of the deployment during the run.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Since the first signup.
    pub at: Duration,
    /// Redis's `used_memory`, in bytes.
    pub redis_memory: f64,
    /// How long each queue's oldest waiting job has waited (BullMQ's wait
    /// list; the alerts' `queue_oldest_waiting_seconds`).
    pub oldest_waiting: BTreeMap<QueueName, Duration>,
    /// Users in flight.
    pub in_flight: usize,
}

/// What a paced run did.
pub struct Paced {
    /// Signups sent.
    pub users: usize,
    /// Every job the users' answers named.
    pub jobs: Vec<String>,
    /// Each answered signup's latency.
    pub latencies: Vec<Duration>,
    /// Users whose flow failed, with why.
    pub failures: BTreeMap<usize, String>,
    /// From the first signup sent to the last.
    pub sending: Duration,
    /// From the first signup sent until every user was done.
    pub finished: Duration,
    /// Taken every [`SAMPLE_EVERY`], and once at the end.
    pub samples: Vec<Sample>,
}

/// Who waits for which job to complete: one query for all of them, not a
/// poll per user (which would be most of Postgres's work at 100 users/s).
#[derive(Default)]
struct Completions(Mutex<HashMap<Uuid, oneshot::Sender<()>>>);

impl Completions {
    fn expect(&self, job: Uuid) -> oneshot::Receiver<()> {
        let (done, wait) = oneshot::channel();
        self.0.lock().expect("not poisoned").insert(job, done);
        wait
    }

    /// Tells the waiters of every completed job, until `stop`.
    async fn watch(&self, fleet: &Fleet, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            let ids: Vec<Uuid> = self
                .0
                .lock()
                .expect("not poisoned")
                .keys()
                .copied()
                .collect();
            if !ids.is_empty() {
                let done: Vec<Uuid> = sqlx::query_scalar(
                    "select job_id from jobs where job_id = any($1) and state = 'completed'",
                )
                .bind(&ids)
                .fetch_all(&fleet.app.pool)
                .await
                .expect("read");
                let mut waiting = self.0.lock().expect("not poisoned");
                for id in done {
                    if let Some(done) = waiting.remove(&id) {
                        let _ = done.send(());
                    }
                }
            }
            // Polling: a job's completion is seen in its record only.
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

impl Fleet {
    /// Samples Redis and the queues now.
    pub async fn sample(&self, queues: &JobQueues, since: Instant, in_flight: usize) -> Sample {
        let mut oldest_waiting = BTreeMap::new();
        for queue in QueueName::ALL {
            let age = queues.oldest_waiting_age(*queue).await.expect("read");
            oldest_waiting.insert(*queue, age.unwrap_or_default());
        }
        Sample {
            at: since.elapsed(),
            redis_memory: self.redis_used_memory(),
            oldest_waiting,
            in_flight,
        }
    }

    /// User `n`: signs up through api instance `n` (round robin), confirms
    /// the address once the confirmation email is out, uploads a photo if
    /// asked; the jobs their answers named, and the signup's latency.
    async fn paced_user(
        &self,
        n: usize,
        photo: Option<&[u8]>,
        completions: &Completions,
    ) -> Result<(Vec<String>, Duration), String> {
        let address = &self.apis[n % self.apis.len()];
        let started = Instant::now();
        let answer = self
            .app
            .post_json_at(
                address,
                "/api/signup",
                &json!({ "email": email(n), "password": "correct horse battery", "name": name(n) }),
            )
            .await;
        let latency = started.elapsed();
        let status = answer.status();
        let mut signup: Value = answer.json().await.map_err(|e| e.to_string())?;
        if status != 201 {
            return Err(format!("signup answered {status}: {signup}"));
        }
        let sent = testkit::job_id(&signup, "account-email");
        let sent = completions.expect(sent.parse().expect("a uuid"));
        tokio::time::timeout(USER_DEADLINE, sent)
            .await
            .map_err(|_| "the confirmation email was not sent in time".to_owned())?
            .map_err(|_| "the run ended first".to_owned())?;
        self.app.confirm_at(address, &mut signup).await;
        let mut jobs = job_ids(&signup);
        if let Some(photo) = photo {
            let token = signup["token"].as_str().expect("a token");
            let upload = self.app.upload_at(address, token, "photo", photo).await;
            let status = upload.status();
            let upload: Value = upload.json().await.map_err(|e| e.to_string())?;
            let Some(job) = upload["job"]["id"].as_str() else {
                return Err(format!("the upload answered {status}: {upload}"));
            };
            jobs.push(job.to_owned());
        }
        Ok((jobs, latency))
    }
}

/// Sends users at `pace` through `fleet` and waits until each is done.
pub async fn at_rate(fleet: &Arc<Fleet>, pace: &Pace) -> Paced {
    let queues = JobQueues::new(&fleet.app.settings().redis, fleet.app.settings().queues);
    let completions = Arc::new(Completions::default());
    let stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let watcher = tokio::spawn({
        let (fleet, completions, stop) = (fleet.clone(), completions.clone(), stop.clone());
        async move { completions.watch(&fleet, &stop).await }
    });
    let sampler = tokio::spawn({
        let (fleet, stop, in_flight) = (fleet.clone(), stop.clone(), in_flight.clone());
        let queues = JobQueues::new(&fleet.app.settings().redis, fleet.app.settings().queues);
        async move {
            let mut samples = Vec::new();
            let mut every = tokio::time::interval(SAMPLE_EVERY);
            while !stop.load(Ordering::Relaxed) {
                every.tick().await;
                let sample = fleet
                    .sample(&queues, started, in_flight.load(Ordering::Relaxed))
                    .await;
                eprintln!(
                    "{:>4.0} s: {} users in flight, Redis {:.1} MB, oldest waiting {}",
                    sample.at.as_secs_f64(),
                    sample.in_flight,
                    sample.redis_memory / 1e6,
                    worst(&sample.oldest_waiting),
                );
                samples.push(sample);
            }
            samples
        }
    });

    // Every uploading user sends the same 320×240 photo, as the load test's.
    let picture: Arc<[u8]> = jpeg(320, 240, &photo(320, 240)).into();
    let users = (pace.rate * pace.duration.as_secs_f64()).round() as usize;
    let permits = Arc::new(Semaphore::new(pace.in_flight));
    let mut flows = JoinSet::new();
    for n in 0..users {
        let due = started + Duration::from_secs_f64(n as f64 / pace.rate);
        // Pacing: the next signup is due then, whatever the answers so far.
        tokio::time::sleep_until(due.into()).await;
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (fleet, completions, in_flight) =
            (fleet.clone(), completions.clone(), in_flight.clone());
        let picture = n.is_multiple_of(pace.photo_every).then(|| picture.clone());
        flows.spawn(async move {
            let outcome = fleet.paced_user(n, picture.as_deref(), &completions).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
            (n, outcome)
        });
    }
    let sending = started.elapsed();

    let mut paced = Paced {
        users,
        jobs: Vec::new(),
        latencies: Vec::new(),
        failures: BTreeMap::new(),
        sending,
        finished: Duration::ZERO,
        samples: Vec::new(),
    };
    let mut done = vec![false; users];
    while let Some(flow) = flows.join_next().await {
        match flow {
            Ok((n, Ok((jobs, latency)))) => {
                done[n] = true;
                paced.jobs.extend(jobs);
                paced.latencies.push(latency);
            }
            Ok((n, Err(why))) => {
                done[n] = true;
                paced.failures.insert(n, why);
            }
            Err(panicked) => {
                eprintln!("a user's flow panicked: {panicked}");
            }
        }
    }
    // A panicked flow does not say whose it was: whoever is not done.
    for (n, _) in done.iter().enumerate().filter(|(_, done)| !**done) {
        paced.failures.insert(n, "the flow panicked".into());
    }
    paced.finished = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    watcher.await.expect("the watcher ends");
    paced.samples = sampler.await.expect("the sampler ends");
    paced.samples.push(fleet.sample(&queues, started, 0).await);
    paced
}

/// The queue whose oldest waiting job has waited longest, and how long.
pub fn worst(oldest: &BTreeMap<QueueName, Duration>) -> String {
    oldest
        .iter()
        .max_by_key(|(_, age)| **age)
        .map_or_else(String::new, |(queue, age)| {
            format!("{:.1} s ({queue})", age.as_secs_f64())
        })
}

/// A job not completed when the run stopped waiting.
#[derive(Debug)]
pub struct Unfinished {
    /// Whose.
    pub user: usize,
    pub queue: String,
    pub state: String,
}

impl Fleet {
    /// Waits up to `deadline` for every job of `jobs` to complete, and
    /// returns those that did not.
    pub async fn unfinished(&self, jobs: &[String], deadline: Duration) -> Vec<Unfinished> {
        let mut left: Vec<Uuid> = jobs.iter().map(|id| id.parse().expect("a uuid")).collect();
        let give_up = Instant::now() + deadline;
        loop {
            left = sqlx::query_scalar(
                "select job_id from jobs where job_id = any($1) and state <> 'completed'",
            )
            .bind(&left)
            .fetch_all(&self.app.pool)
            .await
            .expect("read");
            if left.is_empty() || Instant::now() >= give_up {
                break;
            }
            // Polling: a job's completion is seen in its record only.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "select u.email, j.queue, j.state from jobs j join users u using (user_id)
             where j.job_id = any($1) order by j.queue",
        )
        .bind(&left)
        .fetch_all(&self.app.pool)
        .await
        .expect("read");
        rows.into_iter()
            .map(|(email, queue, state)| Unfinished {
                user: user_of(&email),
                queue,
                state,
            })
            .collect()
    }

    /// How long each queue's oldest job record not yet started has waited
    /// since the change that caused it (handed to Redis or not: what a
    /// user waits for).
    pub async fn oldest_records_not_started(&self) -> BTreeMap<String, Duration> {
        let rows: Vec<(String, f64)> = sqlx::query_as(
            "select queue, extract(epoch from now() - min(created_at))::float8 from jobs
             where state in ('pending', 'waiting') group by queue",
        )
        .fetch_all(&self.app.pool)
        .await
        .expect("read");
        rows.into_iter()
            .map(|(queue, secs)| (queue, Duration::from_secs_f64(secs.max(0.0))))
            .collect()
    }
}

/// `user12@example.com` → 12.
fn user_of(address: &str) -> usize {
    address
        .strip_prefix("user")
        .and_then(|rest| rest.split('@').next()?.parse().ok())
        .unwrap_or_else(|| panic!("not a load test address: {address}"))
}
