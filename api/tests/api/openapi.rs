//! Every operation of the OpenAPI document is exercised. The test client
//! checks each answer against the document (status, headers, body schema),
//! whichever test receives it; what is left to show is that no operation
//! escapes: this test calls each once, and the operations the client
//! checked in this process must cover the document.

use serde_json::{Value, json};
use testkit::TestApp;
use testkit::app::ADMIN_TOKEN;
use testkit::contract::{documented_operations, exercised_operations};
use testkit::images::{jpeg, photo};

const UNSUBSCRIBE_SECRET: &str = "the contract test's unsubscribe secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_exercised_and_answers_as_documented() {
    let mut app = TestApp::spawn_without_worker_with(|s| {
        s.providers.stripe_webhook_secret = Some(testkit::stripe::WEBHOOK_SECRET.into());
        s.mail.unsubscribe_secret = Some(UNSUBSCRIBE_SECRET.into());
        // The guide is made at once, so the test needs not wait a day.
        s.mail.follow_up_delay = std::time::Duration::ZERO;
    })
    .await;
    let document = app.get("/api/openapi.json", None).await;
    let document: Value = document.json().await.expect("the document is JSON");
    assert_eq!(document["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));

    // Account: signup, login, the profile.
    let signup = app.sign_up("contract@example.com", "Contract").await;
    let token = signup["token"].as_str().expect("a token").to_owned();
    let token = token.as_str();
    let invalid = app
        .post_json("/api/signup", &json!({"email": "nope", "password": 1}))
        .await;
    assert_eq!(invalid.status(), 422);
    let error: Value = invalid.json().await.expect("an error body");
    assert!(error["error"]["fields"].is_object(), "{error}");
    let login = json!({"email": "contract@example.com", "password": "correct horse battery"});
    assert_eq!(app.post_json("/api/login", &login).await.status(), 200);
    let wrong = json!({"email": "contract@example.com", "password": "wrong password"});
    assert_eq!(app.post_json("/api/login", &wrong).await.status(), 401);
    app.me(token).await;
    assert_eq!(app.get("/api/me", None).await.status(), 401);
    app.get("/api/me/onboarding.pdf", Some(token)).await;

    // Jobs, and a photo with every job done (the avatar's files exist).
    let job = testkit::job_id(&signup, "welcome-email");
    let path = format!("/api/jobs/{job}");
    let first = app.get(&path, Some(token)).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    let unchanged = app.get_if_none_match(&path, Some(token), &etag).await;
    assert_eq!(unchanged.status(), 304);
    app.get("/api/me/jobs?limit=2", Some(token)).await;
    // The live stream's head is checked; its body never ends, so it is
    // dropped unread.
    drop(app.get("/api/me/events", Some(token)).await);
    assert_eq!(app.get("/api/me/events", None).await.status(), 401);
    let upload = app
        .upload(token, "photo", &jpeg(800, 600, &photo(800, 600)))
        .await;
    let upload: Value = upload.json().await.expect("the upload answers JSON");
    app.run_jobs_until_idle().await;
    let photo_id = upload["photo"]["id"].as_str().expect("a photo id");
    let me = app.me(token).await;
    assert!(me["avatar"].is_object(), "the avatar is there: {me}");
    let thumbnail = format!("/media/photos/{photo_id}/thumbnail.jpg");
    assert_eq!(app.get(&thumbnail, None).await.status(), 200);
    let original = format!("/media/photos/{photo_id}/original");
    assert_eq!(app.get(&original, Some(token)).await.status(), 200);

    // Operations.
    app.get("/healthz", None).await;
    app.get("/readyz", None).await;
    as_operator(&app, reqwest::Method::GET, "/api/admin/queues").await;
    as_operator(
        &app,
        reqwest::Method::GET,
        &format!("/api/admin/jobs/{job}"),
    )
    .await;
    let failed = "/api/admin/queues/welcome-email/failed";
    let missing = format!("{failed}/{}", uuid::Uuid::now_v7());
    as_operator(&app, reqwest::Method::GET, failed).await;
    as_operator(&app, reqwest::Method::POST, &format!("{failed}/retry")).await;
    as_operator(&app, reqwest::Method::POST, &format!("{missing}/retry")).await;
    as_operator(&app, reqwest::Method::DELETE, &missing).await;
    as_operator(
        &app,
        reqwest::Method::POST,
        "/api/admin/queues/image-resize/pause",
    )
    .await;
    as_operator(
        &app,
        reqwest::Method::POST,
        "/api/admin/queues/image-resize/resume",
    )
    .await;
    as_operator(&app, reqwest::Method::GET, "/api/admin/incidents").await;
    as_operator(&app, reqwest::Method::GET, "/api/admin/audit").await;
    let operator = json!({ "token": ADMIN_TOKEN });
    app.post_json("/api/admin/session", &operator).await;
    as_operator(&app, reqwest::Method::DELETE, "/api/admin/session").await;
    as_operator(&app, reqwest::Method::DELETE, "/api/admin/sessions").await;

    // Password reset and address confirmation, with links that name nobody.
    let forgot = json!({"email": "contract@example.com"});
    app.post_json("/api/password/forgot", &forgot).await;
    let reset = json!({"token": "not-a-link", "password": "a brand new password"});
    app.post_json("/api/password/reset", &reset).await;
    app.post_json("/api/email/verify", &json!({"token": "not-a-link"}))
        .await;
    let resend = "/api/email/verify/resend";
    app.send_json(reqwest::Method::POST, resend, token, &json!({}))
        .await;

    // Mail preferences, and the one-click unsubscribe link a mail client
    // follows.
    let user_id: uuid::Uuid = signup["user"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a user id");
    let preferences = json!({ "product_email": false });
    app.send_json(
        reqwest::Method::PUT,
        "/api/me/preferences",
        token,
        &preferences,
    )
    .await;
    let key = store::unsubscribe::UnsubscribeKey::new(&UNSUBSCRIBE_SECRET.into());
    let unsubscribe = format!("/api/email/unsubscribe?token={}", key.token(user_id));
    app.client
        .post(format!("{}{unsubscribe}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("the api answers");

    // The Stripe webhook.
    let event = testkit::stripe::event(
        "evt_contract",
        "customer.deleted",
        testkit::stripe::now(),
        json!({ "id": "cus_contract", "object": "customer" }),
    );
    app.deliver_stripe_event(&event).await;

    // The account's end: its address and password change, its sessions
    // end, then it is deleted.
    let change =
        json!({"current_password": "not the password", "new_password": "a brand new password"});
    app.send_json(reqwest::Method::POST, "/api/me/password", token, &change)
        .await;
    let moving = json!({"password": "not the password", "email": "moved@example.com"});
    app.send_json(reqwest::Method::POST, "/api/me/email", token, &moving)
        .await;
    let other = app.sign_up("other@example.com", "Other").await;
    let other = other["token"].as_str().expect("a token");
    app.send_json(reqwest::Method::DELETE, "/api/sessions", other, &json!({}))
        .await;
    let wrong = json!({ "password": "not the password" });
    app.send_json(reqwest::Method::DELETE, "/api/me", token, &wrong)
        .await;
    app.send_json(reqwest::Method::DELETE, "/api/session", token, &json!({}))
        .await;

    let missed: Vec<_> = documented_operations()
        .difference(&exercised_operations())
        .map(|(method, path)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(
        missed.is_empty(),
        "operations no test called (or whose answers were not checked): {missed:#?}"
    );
}

/// `method path` as the operator (`ADMIN_TOKEN`).
async fn as_operator(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::Response {
    app.client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("the api answers")
}
