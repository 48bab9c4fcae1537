//! More password hashing than the instance can do: answered at once with
//! 503 `overloaded`, never queued without bound, never a 500.

use serde_json::{Value, json};
use testkit::prometheus::Scrape;
use testkit::{DEADLINE, TestApp};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

const API: &str = env!("CARGO_BIN_EXE_api");

async fn app_with_one_hashing_thread(max_queue: usize) -> TestApp {
    TestApp::spawn_without_worker_with(move |s| {
        s.auth.argon2.threads = 1;
        s.auth.argon2.max_queue = max_queue;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signups_past_the_hashing_queue_get_503_overloaded_with_retry_after() {
    let app = app_with_one_hashing_thread(2).await;

    let answers = futures::future::join_all((0..16).map(|n| {
        let app = &app;
        async move {
            let body = json!({
                "email": format!("crowd{n}@example.com"),
                "password": "correct horse battery",
                "name": "Crowd",
            });
            let response = app.post_json("/api/signup", &body).await;
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.expect("JSON");
            (status, retry_after, body)
        }
    }))
    .await;

    let created = answers.iter().filter(|(status, ..)| *status == 201).count();
    let overloaded: Vec<_> = answers
        .iter()
        .filter(|(status, ..)| *status == 503)
        .collect();
    assert_eq!(
        created + overloaded.len(),
        16,
        "only 201 or 503: {answers:?}"
    );
    assert!(created >= 1, "the thread and its queue take some");
    assert!(
        !overloaded.is_empty(),
        "one thread and two queue slots cannot take 16 at once"
    );
    for (_, retry_after, body) in overloaded {
        assert!(retry_after.is_some(), "503 says when to retry");
        assert_eq!(body["error"]["code"], "overloaded");
    }
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(
        users, created as i64,
        "every 201 is a user, every 503 is not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_abandoned_while_waiting_for_a_hash_are_skipped_and_do_not_hold_up_the_next_one() {
    let app = app_with_one_hashing_thread(64).await;
    // A process of its own, so its metrics count only this test's hashes.
    let api = app.spawn_api_process(API).await;
    let signup = app
        .client
        .post(format!("{}/api/signup", api.address))
        .json(&json!({ "email": "patient@example.com", "password": "correct horse battery", "name": "Patient" }))
        .send()
        .await
        .expect("signup");
    assert_eq!(signup.status(), 201);
    // An address with no account: still a full hash (so timing reveals
    // nothing), and no lockout of the patient's account.
    let body = r#"{"email":"stranger@example.com","password":"wrong password"}"#;
    let request = format!(
        "POST /api/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let address = api.address.trim_start_matches("http://");
    let mut waiting = Vec::new();
    for _ in 0..40 {
        let mut stream = TcpStream::connect(address).await.expect("connects");
        stream.write_all(request.as_bytes()).await.expect("sent");
        waiting.push(stream);
    }
    let metrics = format!("{}/metrics", api.address);
    let queued = testkit::wait::until("logins queued for the one thread", DEADLINE, || async {
        let (scrape, _) = Scrape::fetch(&app.client, &metrics).await;
        scrape
            .get("argon2_queue_depth")
            .filter(|depth| *depth >= 10.0)
    })
    .await;

    // Their clients leave while they wait.
    drop(waiting);
    let login = app
        .client
        .post(format!("{}/api/login", api.address))
        .json(&json!({ "email": "patient@example.com", "password": "correct horse battery" }))
        .send()
        .await
        .expect("login");

    assert_eq!(login.status(), 200);
    let (scrape, text) = Scrape::fetch(&app.client, &metrics).await;
    let skipped = scrape.get("argon2_abandoned_total").unwrap_or(0.0);
    // The thread may finish one or two before the server notices a client left.
    assert!(
        skipped >= queued - 3.0,
        "{queued} were waiting when their clients left, {skipped} skipped: {text}"
    );
}
