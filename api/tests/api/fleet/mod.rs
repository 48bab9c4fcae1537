//! A deployment of several api and worker processes against one Postgres,
//! one Redis (single or a cluster) and shared storage, with Stripe and Slack
//! as HTTP mocks that count what they receive: what the many-instance,
//! failover and load tests drive, and how they count side effects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::app::Options;
use testkit::images::{jpeg, photo};
use testkit::redis_cluster::RedisCluster;
use testkit::{ApiProcess, TestApp, WorkerProcess, wait};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::worker_binary;

mod costs;
pub mod paced;

const API: &str = env!("CARGO_BIN_EXE_api");

/// What to run.
pub struct Shape {
    /// api processes taking the requests (the test's own api instance runs
    /// beside them, its relay and monitor too, but is sent nothing).
    pub apis: usize,
    /// worker processes.
    pub workers: usize,
    /// A Redis Cluster of this many primaries, each with this many
    /// replicas; `None`: one Redis.
    pub cluster: Option<(usize, usize)>,
    /// How the Slack mock takes messages.
    pub slack: SlackLimit,
    /// What a new password hash costs, as (`ARGON2_MEMORY_KIB`,
    /// `ARGON2_ITERATIONS`); `None`: production's cost.
    pub hash_cost: Option<(u32, u32)>,
}

/// How the Slack mock takes messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackLimit {
    /// Any number, and the queue's own rate limit is lifted: the time until
    /// every side effect is done measures us, not Slack.
    Lifted,
    /// As real Slack: one message a second, a 429 with `Retry-After: 1` to
    /// any more; the queue keeps its default limit. What proves that
    /// announcements keep up at a rate (by carrying many signups each).
    /// A message names its first 40 signups and counts the rest, so each
    /// user's announcement is counted from their job's result, and the
    /// messages' counts must add up to the users ([`SideEffects::announced`]).
    /// Stripe's budget is its live mode's, 100 calls a second, and each
    /// process has a pool of 10 connections, the default.
    OneASecond,
}

/// The running deployment.
pub struct Fleet {
    pub app: TestApp,
    /// The address of each api process.
    pub apis: Vec<String>,
    api_processes: Vec<ApiProcess>,
    pub workers: Vec<WorkerProcess>,
    pub cluster: Option<RedisCluster>,
    stripe: MockServer,
    /// Held so the mock keeps serving; what it took is in `slack_channel`.
    _slack: MockServer,
    slack_channel: Arc<Mutex<SlackChannel>>,
    slack_limit: SlackLimit,
}

/// What the Slack mock took.
#[derive(Debug, Default)]
pub struct SlackChannel {
    /// The bodies of the messages answered 200, in order.
    pub messages: Vec<String>,
    /// Messages answered 429 (sent less than a second after the last one).
    pub refused: u64,
    last: Option<Instant>,
}

/// Slack's webhook: see [`SlackLimit`].
struct Slack {
    limit: SlackLimit,
    channel: Arc<Mutex<SlackChannel>>,
}

impl Respond for Slack {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut channel = self.channel.lock().expect("not poisoned");
        let now = Instant::now();
        let too_soon = channel
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1));
        if self.limit == SlackLimit::OneASecond && too_soon {
            channel.refused += 1;
            return ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_string("rate_limited");
        }
        channel.last = Some(now);
        channel
            .messages
            .push(String::from_utf8_lossy(&request.body).into_owned());
        ResponseTemplate::new(200).set_body_string("ok")
    }
}

/// Stripe's answer to a new customer: a new id each time.
struct NewCustomer(AtomicU64);

impl Respond for NewCustomer {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        ResponseTemplate::new(200)
            .set_body_json(json!({ "id": format!("cus_{n}"), "object": "customer" }))
    }
}

impl Fleet {
    /// Starts the services, the api processes and the workers, with locks
    /// short enough that a killed worker's jobs come back within seconds
    /// and the relay handing over again what Redis lost after 5 s.
    pub async fn start(shape: Shape) -> Self {
        let cluster = shape
            .cluster
            .map(|(primaries, replicas)| RedisCluster::start(primaries, replicas));
        let nodes = cluster.as_ref().map(RedisCluster::nodes);
        let stripe = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/customers"))
            .respond_with(NewCustomer(AtomicU64::new(1)))
            .mount(&stripe)
            .await;
        let slack = MockServer::start().await;
        let slack_channel = Arc::new(Mutex::new(SlackChannel::default()));
        Mock::given(method("POST"))
            .respond_with(Slack {
                limit: shape.slack,
                channel: slack_channel.clone(),
            })
            .mount(&slack)
            .await;
        let (stripe_base, slack_url) = (stripe.uri(), format!("{}/hook", slack.uri()));
        let (slack_limit, hash_cost) = (shape.slack, shape.hash_cost);
        let app = TestApp::spawn_with(Options::default().configure(move |s| {
            s.redis.cluster_nodes = nodes.map(Into::into);
            s.redis.redeliver_after = Duration::from_secs(5);
            // Six processes share the test's Postgres (its connections are
            // 200): the default pool where the rate is the point.
            s.database.max_connections = match slack_limit {
                SlackLimit::Lifted => 5,
                SlackLimit::OneASecond => 10,
            };
            s.providers.stripe_secret_key = Some("sk_test_fleet".into());
            s.providers.stripe_api_base = stripe_base;
            s.providers.slack_webhook_url = Some(slack_url.into());
            if slack_limit == SlackLimit::OneASecond {
                s.providers.stripe_rate_limit = 100;
            }
            if slack_limit == SlackLimit::Lifted {
                // The mock takes any number of messages, so runs come every
                // 100 ms and each names all its signups (at most 40 are
                // named): every signup's message is counted and the time
                // until every side effect is done measures us, not Slack.
                s.queues.slack_notify.batch = Some(catalogue::Batch {
                    max: 40,
                    every: Duration::from_millis(100),
                });
            }
            if let Some((memory_kib, iterations)) = hash_cost {
                s.auth.argon2.memory_kib = memory_kib;
                s.auth.argon2.iterations = iterations;
            }
            for queue in catalogue::QueueName::ALL {
                let queue = s.queues.get_mut(*queue);
                queue.lock_duration = Duration::from_secs(3);
                queue.stalled_interval = Duration::from_secs(1);
                queue.backoff = Duration::from_millis(200);
            }
        }))
        .await;
        let mut api_processes = Vec::new();
        for _ in 0..shape.apis {
            api_processes.push(app.spawn_api_process(API).await);
        }
        let apis = api_processes
            .iter()
            .map(|api| api.address.clone())
            .collect();
        let workers = (0..shape.workers)
            .map(|_| app.spawn_worker_process(worker_binary()))
            .collect();
        Self {
            app,
            apis,
            api_processes,
            workers,
            cluster,
            stripe,
            _slack: slack,
            slack_channel,
            slack_limit,
        }
    }

    /// What the Slack mock took so far.
    pub fn slack(&self) -> std::sync::MutexGuard<'_, SlackChannel> {
        self.slack_channel.lock().expect("not poisoned")
    }

    /// Signs user `n` up and confirms the address, both through api
    /// instance `n` (round robin), uploads a photo for every `photo_every`th
    /// user, and returns every job started, with the signup's latency.
    pub async fn user(&self, n: usize, photo_every: usize) -> (Vec<String>, Duration) {
        let address = &self.apis[n % self.apis.len()];
        let started = Instant::now();
        let mut signup = self
            .app
            .sign_up_unverified_at(address, &email(n), &name(n))
            .await;
        let latency = started.elapsed();
        // As its owner would: the link comes in the confirmation email (an
        // address confirmed before that email goes out gets none).
        let sent = testkit::job_id(&signup, "account-email");
        self.app
            .wait_for_job_state(&sent, "completed", testkit::DEADLINE)
            .await;
        self.app.confirm_at(address, &mut signup).await;
        let mut jobs = job_ids(&signup);
        if photo_every > 0 && n.is_multiple_of(photo_every) {
            let token = signup["token"].as_str().expect("a token");
            let upload: Value = self
                .app
                .upload_at(address, token, "photo", &jpeg(320, 240, &photo(320, 240)))
                .await
                .json()
                .await
                .expect("JSON");
            jobs.push(
                upload["job"]["id"]
                    .as_str()
                    .expect("the resize job")
                    .to_owned(),
            );
        }
        (jobs, latency)
    }

    /// Waits until every job in `jobs` is completed, or panics naming those
    /// that are not.
    pub async fn wait_for(&self, jobs: &[String], deadline: Duration) {
        let ids: Vec<uuid::Uuid> = jobs.iter().map(|id| id.parse().expect("a uuid")).collect();
        let result = tokio::time::timeout(
            deadline,
            wait::until("every job to complete", deadline * 2, || async {
                let done: i64 = sqlx::query_scalar(
                    "select count(*) from jobs where job_id = any($1) and state = 'completed'",
                )
                .bind(&ids)
                .fetch_one(&self.app.pool)
                .await
                .expect("counted");
                (usize::try_from(done).unwrap_or(0) == ids.len()).then_some(())
            }),
        )
        .await;
        if result.is_err() {
            let left: Vec<(String, String)> = sqlx::query_as(
                "select queue, state from jobs where job_id = any($1) and state <> 'completed'",
            )
            .bind(&ids)
            .fetch_all(&self.app.pool)
            .await
            .expect("read");
            panic!(
                "{} jobs did not complete within {deadline:?}: {left:?}",
                left.len()
            );
        }
    }

    /// What the outside world received, per user: emails, Stripe customers,
    /// Slack messages naming them (one message may name many); and the
    /// files made: onboarding PDFs, resized photos.
    pub async fn side_effects(&self, users: usize) -> SideEffects {
        let mut emails: HashMap<String, usize> = HashMap::new();
        for email in self.app.smtp.received() {
            for to in &email.to {
                *emails.entry(to.clone()).or_default() += 1;
            }
        }
        let mut customers: HashMap<String, usize> = HashMap::new();
        for request in self.stripe.received_requests().await.unwrap_or_default() {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            // A form; of our addresses only the `@` is encoded.
            if let Some(email) = body.split('&').find_map(|pair| pair.strip_prefix("email=")) {
                *customers.entry(email.replace("%40", "@")).or_default() += 1;
            }
        }
        let messages = self.slack().messages.clone();
        let mut announced: HashMap<usize, usize> = HashMap::new();
        let named_in: Vec<String> = match self.slack_limit {
            SlackLimit::Lifted => messages.clone(),
            // A message names 40; each job's result names its own user.
            SlackLimit::OneASecond => sqlx::query_scalar(
                "select result->>'posted' from jobs
                 where queue = 'slack-notify' and state = 'completed'",
            )
            .fetch_all(&self.app.pool)
            .await
            .expect("read"),
        };
        for text in &named_in {
            for n in users_named(text) {
                *announced.entry(n).or_default() += 1;
            }
        }
        let per_user = (0..users)
            .map(|n| {
                let address = email(n);
                let count = |map: &HashMap<String, usize>| map.get(&address).copied().unwrap_or(0);
                let slack = announced.get(&n).copied().unwrap_or(0);
                (n, [count(&emails), count(&customers), slack])
            })
            .collect();
        let files = testkit::files_under(self.app.storage_dir());
        let count = |suffix: &str| {
            files
                .iter()
                .filter(|file| file.to_string_lossy().ends_with(suffix))
                .count()
        };
        SideEffects {
            per_user,
            announced: messages.iter().map(|message| signups_in(message)).sum(),
            pdfs: count("onboarding.pdf"),
            photo_sizes: count("large.jpg") + count("medium.jpg") + count("thumbnail.jpg"),
        }
    }
}

/// The ids of the jobs a signup (or confirmation) answer points to.
pub fn job_ids(answer: &Value) -> Vec<String> {
    answer["jobs"]
        .as_array()
        .expect("the jobs")
        .iter()
        .map(|job| job["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The users a message names ("User 12"), each once however often.
fn users_named(message: &str) -> HashSet<usize> {
    message
        .split(NAME_PREFIX)
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// How many signups a Slack message announces: `:tada: 57 new signups:`,
/// or one.
fn signups_in(message: &str) -> usize {
    message
        .split_once(":tada: ")
        .and_then(|(_, rest)| rest.split_once(" new signups:"))
        .and_then(|(count, _)| count.parse().ok())
        .unwrap_or(1)
}

/// Counted side effects.
#[derive(Debug)]
pub struct SideEffects {
    /// Per user: [emails (confirmation, welcome), Stripe customers, Slack
    /// announcements naming them (messages, or with Slack's real limit
    /// their job's result)].
    pub per_user: BTreeMap<usize, [usize; 3]>,
    /// Signups the Slack messages announced, counted ones included: the
    /// users once each, or some twice.
    pub announced: usize,
    pub pdfs: usize,
    pub photo_sizes: usize,
}

impl SideEffects {
    /// Users whose counts are not exactly [2, 1, 1]: (lost, duplicated).
    pub fn lost_and_duplicated(&self) -> (Vec<usize>, Vec<usize>) {
        const ONCE: [usize; 3] = [2, 1, 1];
        let lost = self
            .per_user
            .iter()
            .filter(|(_, counts)| counts.iter().zip(ONCE).any(|(got, want)| *got < want))
            .map(|(n, _)| *n)
            .collect();
        let duplicated = self
            .per_user
            .iter()
            .filter(|(_, counts)| counts.iter().zip(ONCE).any(|(got, want)| *got > want))
            .map(|(n, _)| *n)
            .collect();
        (lost, duplicated)
    }
}

/// User `n`'s address.
pub fn email(n: usize) -> String {
    format!("user{n}@example.com")
}

/// What every user's name starts with; the number follows.
const NAME_PREFIX: &str = "User ";

/// User `n`'s name: found in a Slack message by [`users_named`].
fn name(n: usize) -> String {
    format!("{NAME_PREFIX}{n}")
}

/// The jobs and latencies of `users` users made `at_once` at a time.
pub async fn load(
    fleet: &Arc<Fleet>,
    users: std::ops::Range<usize>,
    at_once: usize,
    photo_every: usize,
) -> (Vec<String>, Vec<Duration>) {
    use futures::StreamExt as _;
    let results: Vec<(Vec<String>, Duration)> = futures::stream::iter(users)
        .map(|n| {
            let fleet = fleet.clone();
            async move { fleet.user(n, photo_every).await }
        })
        .buffer_unordered(at_once)
        .collect()
        .await;
    let mut jobs = Vec::new();
    let mut latencies = Vec::new();
    for (user_jobs, latency) in results {
        jobs.extend(user_jobs);
        latencies.push(latency);
    }
    (jobs, latencies)
}
