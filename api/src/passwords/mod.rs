//! Argon2id password hashing on a small pool of dedicated threads.
//!
//! Why not `spawn_blocking`: each hash needs 19 MiB. On the blocking pool
//! every new thread got its own malloc arena, and glibc keeps a freed 19 MiB
//! block in the arena of the thread that freed it (after the first free it
//! raises its mmap threshold past 19 MiB, so later blocks come from arenas,
//! not from `mmap`). Under load the api grew to 735 MB and stayed there.
//! Here one thread per core owns one reusable 19 MiB block, allocated once:
//! memory for hashing is `cores × 19 MiB` whatever the load.
//!
//! The queue in front of the threads is bounded. When it is full the caller
//! gets [`Overloaded`] at once (the api answers 503 with `Retry-After`), so
//! waiting time and memory stay bounded at any load. A hash whose requester
//! went away (client disconnected, request timed out) is skipped, and a hash
//! that started always finishes on its thread: never more hashes at once
//! than threads, whatever happens to the request.
//!
//! What a new hash costs is a setting (`ARGON2_MEMORY_KIB`,
//! `ARGON2_ITERATIONS`), lowered only by the load test's profile: 100 real
//! signups a second do not fit on 2 cores at production's cost. Each PHC
//! string records the cost it was made with, and is verified at that cost,
//! so hashes made under either setting keep working under the other. A
//! login does not rehash a cheaper stored hash to the current cost: the
//! lowered cost never leaves a test's database.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use platform::config::{ARGON2_DEFAULT_ITERATIONS, ARGON2_DEFAULT_MEMORY_KIB, Argon2Settings};
use tokio::sync::oneshot;

/// A PHC hash of an unguessable password with the default parameters.
/// Logins for unknown emails are checked against it, so they take as long
/// as real ones and timing does not reveal who has an account.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtcmVhbC1zYWx0$\
                          4Kt1bVhb4wIqbgPbEXyA3LkHVb7sVlLkt0pKLcJy7Pk";

/// The queue of hashes is full: the caller should come back later.
#[derive(Debug, thiserror::Error)]
#[error("too many password hashes are waiting")]
pub struct Overloaded;

/// A result with the time spent waiting for a hashing thread and hashing.
#[derive(Debug)]
pub struct Timed<T> {
    /// The result.
    pub value: T,
    /// Waiting for a free thread.
    pub queued: Duration,
    /// Hashing.
    pub ran: Duration,
}

/// Failures of a hashing request.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue is full; retry later.
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    /// The hashing threads are gone or Argon2 refused its input: a bug.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// One hashing request for a thread: given the thread's memory, it computes
/// and answers its requester, or does nothing if the requester has left.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The pool: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Passwords {
    queue: SyncSender<Job>,
    waiting: Arc<AtomicUsize>,
    /// The cost of new hashes.
    params: Params,
    /// What unknown emails are checked against: a hash at `params`.
    dummy: Arc<str>,
}

impl Passwords {
    /// Starts `settings.threads` hashing threads behind a queue of at most
    /// `settings.max_queue` waiting requests, making hashes at the settings'
    /// cost; warns when that cost is below production's.
    pub fn start(settings: &Argon2Settings) -> std::io::Result<Self> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            Params::DEFAULT_P_COST,
            None,
        )
        .map_err(|e| std::io::Error::other(format!("Argon2 refuses its settings: {e}")))?;
        if settings.is_lowered() {
            tracing::warn!(
                memory_kib = settings.memory_kib,
                iterations = settings.iterations,
                "password hashes are made below production's cost ({} KiB, {} passes): \
                 the load test's profile, never a deployment's (ARGON2_MEMORY_KIB, ARGON2_ITERATIONS)",
                ARGON2_DEFAULT_MEMORY_KIB,
                ARGON2_DEFAULT_ITERATIONS,
            );
        }
        let dummy: Arc<str> = if params == Params::DEFAULT {
            DUMMY_HASH.into()
        } else {
            // Made once, so an unknown email takes as long as a real one at
            // this cost too.
            hash_with(&params, "not-a-real-password", &mut Vec::new())
                .map_err(std::io::Error::other)?
                .into()
        };
        let (threads, max_queue) = (settings.threads, settings.max_queue);
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(max_queue);
        let jobs = Arc::new(Mutex::new(jobs));
        let waiting = Arc::new(AtomicUsize::new(0));
        for n in 0..threads.max(1) {
            let jobs = jobs.clone();
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || run(&jobs, &waiting))?;
        }
        Ok(Self {
            queue,
            waiting,
            params,
            dummy,
        })
    }

    /// Requests waiting for a hashing thread right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Hashes `password` with Argon2id (by default 19 MiB, 2 passes; a
    /// random salt) into a PHC string that records its own parameters.
    pub async fn hash(&self, password: String) -> Result<Timed<String>, HashError> {
        let params = self.params.clone();
        self.submit(move |memory| hash_with(&params, &password, memory))
            .await
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown
    /// email) it checks against a dummy so the answer takes as long.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let dummy = self.dummy.clone();
        let timed = self
            .submit(move |memory| {
                let matches = verify(&password, stored.as_deref().unwrap_or(&dummy), memory);
                Ok(stored.is_some() && matches)
            })
            .await?;
        Ok(timed.value)
    }

    /// Queues `work` for a hashing thread, in the caller's span, and waits
    /// for its answer; a full queue is [`HashError::Overloaded`] at once.
    async fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, String> + Send + 'static,
    ) -> Result<Timed<T>, HashError> {
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::current();
        let enqueued = Instant::now();
        let job: Job = Box::new(move |memory| {
            if reply.is_closed() {
                // Nobody is waiting for this answer any more: skip the work.
                // Counted, because many skips mean clients give up waiting.
                metrics::counter!("argon2_abandoned_total").increment(1);
                return;
            }
            let queued = enqueued.elapsed();
            let started = Instant::now();
            let value = span.in_scope(|| work(memory));
            let timed = value.map(|value| Timed {
                value,
                queued,
                ran: started.elapsed(),
            });
            // The requester may have gone meanwhile; then nobody needs this.
            let _ = reply.send(timed);
        });
        // Counted before the send so a thread's decrement never comes first.
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = self.queue.try_send(job) {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(match error {
                TrySendError::Full(_) => HashError::Overloaded(Overloaded),
                TrySendError::Disconnected(_) => {
                    HashError::Failed("the hashing threads have stopped".into())
                }
            });
        }
        answer
            .await
            .map_err(|_| HashError::Failed("a hashing thread dropped its task".into()))?
            .map_err(HashError::Failed)
    }
}

/// One hashing thread: runs jobs until the pool is dropped.
fn run(jobs: &Mutex<Receiver<Job>>, waiting: &AtomicUsize) {
    // Allocated on first use and reused for every hash on this thread.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let jobs = jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        waiting.fetch_sub(1, Ordering::Relaxed);
        job(&mut memory);
    }
}

/// `memory` sized for `params`, grown only if a stored hash asks for more.
fn blocks_for<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    let count = params.block_count();
    if memory.len() < count {
        memory.resize(count, Block::new());
    }
    &mut memory[..count]
}

/// A PHC string of `password` hashed at `params` with a random salt.
fn hash_with(params: &Params, password: &str, memory: &mut Vec<Block>) -> Result<String, String> {
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("the OS random source failed: {e}"))?;
    let mut output = [0_u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut output,
            blocks_for(memory, params),
        )
        .map_err(|e| format!("argon2 failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: params.try_into().map_err(|e| format!("{e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| format!("{e}"))?),
        hash: Some(Output::new(&output).map_err(|e| format!("{e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `stored`; a malformed stored
/// hash matches nothing.
fn verify(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(phc.algorithm.as_str()),
        Params::try_from(&phc),
    ) else {
        return false;
    };
    let version = phc
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let mut output = vec![0_u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let hashed = argon2.hash_password_into_with_memory(
        password.as_bytes(),
        salt.as_ref(),
        &mut output,
        blocks_for(memory, &params),
    );
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(&output).is_ok_and(|computed| &computed == expected)
}

#[cfg(test)]
mod tests;
