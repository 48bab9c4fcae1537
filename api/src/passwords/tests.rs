//! The pool, its costs and its bounds.

use super::*;
use platform::config::{ARGON2_MIN_ITERATIONS, ARGON2_MIN_MEMORY_KIB};

/// A pool making hashes at `memory_kib` and `iterations`.
fn costing(memory_kib: u32, iterations: u32) -> Passwords {
    Passwords::start(&Argon2Settings {
        threads: 1,
        max_queue: 4,
        memory_kib,
        iterations,
    })
    .unwrap()
}

/// A pool at production's cost.
fn pool(threads: usize, max_queue: usize) -> Passwords {
    Passwords::start(&Argon2Settings {
        threads,
        max_queue,
        memory_kib: ARGON2_DEFAULT_MEMORY_KIB,
        iterations: ARGON2_DEFAULT_ITERATIONS,
    })
    .unwrap()
}

#[test]
fn the_settings_defaults_and_floors_are_argon2s_own() {
    assert_eq!(ARGON2_DEFAULT_MEMORY_KIB, Params::DEFAULT_M_COST);
    assert_eq!(ARGON2_DEFAULT_ITERATIONS, Params::DEFAULT_T_COST);
    assert_eq!(ARGON2_MIN_MEMORY_KIB, Params::MIN_M_COST);
    assert_eq!(ARGON2_MIN_ITERATIONS, Params::MIN_T_COST);
    let lowest = costing(ARGON2_MIN_MEMORY_KIB, ARGON2_MIN_ITERATIONS);
    assert_eq!(lowest.params.m_cost(), 8, "Argon2 takes its own minimums");
}

#[tokio::test]
async fn a_hash_made_at_one_cost_verifies_at_the_other() {
    let production = pool(1, 4);
    let lowered = costing(1024, 1);
    let strong = production.hash("correct horse".into()).await.unwrap().value;
    let cheap = lowered.hash("correct horse".into()).await.unwrap().value;
    assert!(
        strong.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{strong}"
    );
    assert!(
        cheap.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
        "{cheap}"
    );
    for (pool, stored) in [(&lowered, &strong), (&production, &cheap)] {
        assert!(
            pool.verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap(),
            "{stored} is verified at its own cost"
        );
        assert!(
            !pool
                .verify("wrong horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
    }
}

#[tokio::test]
async fn an_unknown_email_is_checked_at_the_current_cost() {
    let lowered = costing(1024, 1);
    let dummy = PasswordHash::new(&lowered.dummy).expect("a valid PHC string");
    let params = Params::try_from(&dummy).unwrap();
    assert_eq!((params.m_cost(), params.t_cost()), (1024, 1));
    assert_eq!(&*pool(1, 1).dummy, DUMMY_HASH);
}

#[tokio::test]
async fn a_password_verifies_only_against_its_own_hash() {
    let passwords = pool(1, 4);
    let hash = passwords.hash("correct horse".into()).await.unwrap().value;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(
        passwords
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap()
    );
    assert!(
        !passwords
            .verify("wrong horse".into(), Some(hash))
            .await
            .unwrap()
    );
    assert!(!passwords.verify("anything".into(), None).await.unwrap());
}

#[tokio::test]
async fn hashes_made_by_the_argon2_crate_still_verify() {
    use argon2::PasswordHasher as _;
    let stored = Argon2::default()
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
    let passwords = pool(1, 4);
    assert!(
        passwords
            .verify("correct horse".into(), Some(stored))
            .await
            .unwrap()
    );
}

#[test]
fn the_dummy_hash_is_well_formed_with_default_parameters() {
    let phc = PasswordHash::new(DUMMY_HASH).expect("a valid PHC string");
    assert_eq!(
        Params::try_from(&phc).unwrap().m_cost(),
        Params::DEFAULT_M_COST
    );
    assert!(!verify("", DUMMY_HASH, &mut Vec::new()));
}

#[tokio::test]
async fn a_request_whose_caller_left_is_skipped_not_hashed() {
    let passwords = pool(1, 16);
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = |ran: &Arc<AtomicUsize>| {
        let ran = ran.clone();
        move |_: &mut Vec<Block>| {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    };
    // The only thread stays busy until released, so the rest queue up.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let blocker = passwords.submit(move |_| hold.recv().map_err(|e| e.to_string()));
    let mut blocker = Box::pin(blocker);
    let _ = tokio::time::timeout(Duration::ZERO, &mut blocker).await;

    for _ in 0..10 {
        let mut left = Box::pin(passwords.submit(counted(&ran)));
        // Polled once, so it is queued; then its caller goes away.
        let _ = tokio::time::timeout(Duration::ZERO, &mut left).await;
    }
    let stayed = passwords.submit(counted(&ran));
    release.send(()).unwrap();
    blocker.await.unwrap();
    stayed.await.unwrap();

    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "only the request still awaited ran"
    );
}

#[tokio::test]
async fn a_full_queue_answers_overloaded_at_once() {
    let passwords = pool(1, 1);
    let mut calls = Vec::new();
    for _ in 0..4 {
        let passwords = passwords.clone();
        calls.push(tokio::spawn(
            async move { passwords.hash("pw".into()).await },
        ));
    }
    let mut overloaded = 0;
    for call in calls {
        if matches!(call.await.unwrap(), Err(HashError::Overloaded(_))) {
            overloaded += 1;
        }
    }
    assert!(
        overloaded >= 1,
        "one thread and one queue slot cannot take four hashes"
    );
    assert_eq!(passwords.waiting(), 0);
}
