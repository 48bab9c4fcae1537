use serde_json::{Value, json};
use testkit::TestApp;

#[tokio::test]
async fn login_accepts_the_email_in_any_case_and_the_token_opens_me() {
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("Hopper@Example.com", "Grace Hopper").await;

    let response = app
        .post_json(
            "/api/login",
            &json!({ "email": "hopper@example.COM", "password": "correct horse battery" }),
        )
        .await;

    assert_eq!(response.status(), 200);
    let login: Value = response.json().await.expect("json");
    assert_eq!(login["user"]["id"], signup["user"]["id"]);
    let token = login["token"].as_str().expect("token");
    assert_ne!(token, signup["token"].as_str().expect("token"));
    let me: Value = app
        .get("/api/me", Some(token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["id"], signup["user"]["id"]);
    assert_eq!(me["email"], "Hopper@Example.com");
    assert_eq!(me["name"], "Grace Hopper");
    assert!(me["created_at"].is_string());
    for field in ["avatar", "stripe_customer_id", "onboarding_pdf_url"] {
        assert!(me[field].is_null(), "{field} is part of the contract: {me}");
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = TestApp::spawn_without_worker().await;
    app.sign_up("known@example.com", "Known").await;

    for (email, password) in [
        ("known@example.com", "wrong password!"),
        ("unknown@example.com", "correct horse battery"),
    ] {
        let response = app
            .post_json(
                "/api/login",
                &json!({ "email": email, "password": password }),
            )
            .await;

        assert_eq!(response.status(), 401);
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["code"], "invalid_credentials");
    }
}

#[tokio::test]
async fn me_without_a_valid_token_is_a_401() {
    let app = TestApp::spawn_without_worker().await;

    let missing = app.get("/api/me", None).await;
    let garbage = app.get("/api/me", Some("not-a-token")).await;

    for response in [missing, garbage] {
        assert_eq!(response.status(), 401);
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["code"], "unauthorized");
    }
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/login",
        &json!({ "email": email, "password": password }),
    )
    .await
}

async fn delete(app: &TestApp, address: &str, path: &str, token: &str) -> u16 {
    app.client
        .delete(format!("{address}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the api answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn logout_revokes_the_calling_token_at_once_and_only_it() {
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up("leaving@example.com", "Leaving").await;
    let first = signup["token"].as_str().expect("token");
    let second: Value = login(&app, "leaving@example.com", "correct horse battery")
        .await
        .json()
        .await
        .expect("json");
    let second = second["token"].as_str().expect("token");
    app.me(first).await; // now cached as verified

    assert_eq!(delete(&app, &app.address, "/api/session", first).await, 204);

    assert_eq!(app.get("/api/me", Some(first)).await.status(), 401);
    assert_eq!(app.get("/api/me", Some(second)).await.status(), 200);
    assert_eq!(delete(&app, &app.address, "/api/session", first).await, 401);
}

#[tokio::test]
async fn signing_out_everywhere_revokes_every_token_of_the_user() {
    let app = TestApp::spawn_without_worker().await;
    let first = app.sign_up("all@example.com", "All").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let second: Value = login(&app, "all@example.com", "correct horse battery")
        .await
        .json()
        .await
        .expect("json");
    let other = app.sign_up("other@example.com", "Other").await["token"]
        .as_str()
        .expect("token")
        .to_owned();

    assert_eq!(
        delete(&app, &app.address, "/api/sessions", &first).await,
        204
    );

    for token in [first.as_str(), second["token"].as_str().expect("token")] {
        assert_eq!(app.get("/api/me", Some(token)).await.status(), 401);
    }
    assert_eq!(
        app.get("/api/me", Some(&other)).await.status(),
        200,
        "other users stay signed in"
    );
}

#[tokio::test]
async fn a_token_revoked_on_one_instance_stops_working_on_another_within_seconds() {
    let app = TestApp::spawn_without_worker().await;
    let other_instance = app.start_another_api().await;
    let token = app.sign_up("twice@example.com", "Twice").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let me_there = || async {
        app.client
            .get(format!("{other_instance}/api/me"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("the other instance answers")
            .status()
            .as_u16()
    };
    assert_eq!(
        me_there().await,
        200,
        "the other instance now trusts the token"
    );

    assert_eq!(
        delete(&app, &app.address, "/api/session", &token).await,
        204
    );

    testkit::wait::until(
        "the other instance to refuse the revoked token",
        std::time::Duration::from_secs(10),
        || async { (me_there().await == 401).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn failed_logins_lock_the_account_whatever_address_they_come_from() {
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.auth.login_failures.max = 3;
        s.auth.rate_limit = 2;
        s.server.client_ip_header = Some("x-forwarded-for".into());
    })
    .await;
    app.sign_up_unverified("victim@example.com", "Victim").await;
    app.sign_up_unverified("bystander@example.com", "Bystander")
        .await;
    let attempt = |n: u32, email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}/api/login", app.address))
                .header("x-forwarded-for", format!("203.0.113.{n}"))
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
                .expect("the api answers")
        }
    };

    let mut statuses = Vec::new();
    for n in 0..3 {
        statuses.push(
            attempt(n, "victim@example.com", "wrong guess")
                .await
                .status()
                .as_u16(),
        );
    }
    let locked = attempt(10, "victim@example.com", "correct horse battery battery").await;
    let right_password = attempt(11, "victim@example.com", "correct horse battery").await;

    let unknown = attempt(13, "nobody@example.com", "correct horse battery").await;
    assert_eq!(statuses, [401, 401, 401]);
    assert_eq!(locked.status(), 401);
    assert_eq!(
        right_password.status(),
        401,
        "even the right password is refused"
    );
    assert!(!right_password.headers().contains_key("retry-after"));
    let (right_password, unknown): (Value, Value) = (
        right_password.json().await.expect("json"),
        unknown.json().await.expect("json"),
    );
    assert_eq!(
        right_password, unknown,
        "a locked account answers what an unknown address answers"
    );
    let bystander = attempt(12, "bystander@example.com", "correct horse battery").await;
    assert_eq!(bystander.status(), 200, "other accounts are unaffected");
}

#[tokio::test]
async fn a_successful_login_clears_earlier_failures() {
    let app = TestApp::spawn_without_worker_with(move |s| s.auth.login_failures.max = 2).await;
    app.sign_up("forgetful@example.com", "Forgetful").await;

    let mut statuses = Vec::new();
    for password in [
        "typo",
        "correct horse battery",
        "typo",
        "correct horse battery",
    ] {
        statuses.push(
            login(&app, "forgetful@example.com", password)
                .await
                .status()
                .as_u16(),
        );
    }

    assert_eq!(statuses, [401, 200, 401, 200]);
}

#[tokio::test]
async fn a_login_with_an_impossible_email_is_a_401_not_a_server_error() {
    let app = TestApp::spawn_without_worker().await;

    for email in ["nul\u{0}@example.com", &"a".repeat(300)] {
        let response = login(&app, email, "whatever").await;

        assert_eq!(response.status(), 401, "{email:?}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["code"], "invalid_credentials");
    }
}

/// `POST /api/login` with `body`.
async fn login_with(app: &TestApp, body: Value) -> u16 {
    app.post_json("/api/login", &body).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_wrong_passwords_are_counted_only_up_to_the_limit_and_all_answer_401() {
    let app = TestApp::spawn_without_worker_with(|s| {
        s.auth.login_failures.max = 10;
        // Every guess from one client: only the account's limit applies.
        s.auth.rate_limit = 0;
    })
    .await;
    app.sign_up("target@example.com", "Target").await;

    let guesses = futures::future::join_all((0..50).map(|n| {
        login_with(
            &app,
            json!({ "email": "target@example.com", "password": format!("guess number {n}") }),
        )
    }))
    .await;

    // Refused alike; each still hashes (as an unknown address does), so
    // past the hashing queue some get a quick 503 instead.
    assert!(guesses.iter().all(|&s| s == 401 || s == 503), "{guesses:?}");
    let counted: i32 =
        sqlx::query_scalar("select login_failures from users where email = 'target@example.com'")
            .fetch_one(&app.pool)
            .await
            .expect("the count");
    assert_eq!(counted, 10, "only the limit reaches the hash");
    let right = login_with(
        &app,
        json!({ "email": "target@example.com", "password": "correct horse battery" }),
    )
    .await;
    assert_eq!(right, 401, "the account is locked");
}

#[tokio::test]
async fn a_device_that_signed_in_before_still_logs_in_while_strangers_have_locked_the_account() {
    let app = TestApp::spawn_without_worker_with(|s| {
        s.auth.login_failures.max = 3;
        s.auth.rate_limit = 0;
    })
    .await;
    let signup = app.sign_up("owner@example.com", "Owner").await;
    let owners_device = signup["device_token"]
        .as_str()
        .expect("a device token")
        .to_owned();
    let other = app.sign_up("other@example.com", "Other").await;
    let others_device = other["device_token"]
        .as_str()
        .expect("a device token")
        .to_owned();
    let right = "correct horse battery";

    for n in 0..3 {
        let status = login_with(
            &app,
            json!({ "email": "owner@example.com", "password": format!("stranger {n}") }),
        )
        .await;
        assert_eq!(status, 401);
    }
    let stranger = login_with(
        &app,
        json!({ "email": "owner@example.com", "password": right }),
    )
    .await;
    let forged = login_with(
        &app,
        json!({ "email": "owner@example.com", "password": right, "device_token": "made-up" }),
    )
    .await;
    let borrowed = login_with(
        &app,
        json!({ "email": "owner@example.com", "password": right, "device_token": others_device }),
    )
    .await;
    let owner = app
        .post_json(
            "/api/login",
            &json!({ "email": "owner@example.com", "password": right, "device_token": owners_device }),
        )
        .await;

    assert_eq!(stranger, 401, "the account is locked for strangers");
    assert_eq!(forged, 401, "an unknown device token is a stranger");
    assert_eq!(borrowed, 401, "another account's device is a stranger here");
    assert_eq!(owner.status(), 200, "the owner's device gets in");
    let owner: Value = owner.json().await.expect("json");
    assert_eq!(
        owner["device_token"],
        owners_device.as_str(),
        "the device stays trusted"
    );
    assert!(owner["token"].is_string());
    let still_locked = login_with(
        &app,
        json!({ "email": "owner@example.com", "password": right }),
    )
    .await;
    assert_eq!(
        still_locked, 401,
        "the owner's login gives strangers no new guesses"
    );
}

#[tokio::test]
async fn a_trusted_device_gets_no_more_guesses_than_the_account() {
    let app = TestApp::spawn_without_worker_with(|s| {
        s.auth.login_failures.max = 2;
        s.auth.rate_limit = 0;
    })
    .await;
    let signup = app.sign_up("owner@example.com", "Owner").await;
    let device = signup["device_token"]
        .as_str()
        .expect("a device token")
        .to_owned();

    let mut statuses = Vec::new();
    for password in ["wrong one", "wrong two", "correct horse battery"] {
        statuses.push(
            login_with(
                &app,
                json!({ "email": "owner@example.com", "password": password, "device_token": device }),
            )
            .await,
        );
    }
    let without_device = login_with(
        &app,
        json!({ "email": "owner@example.com", "password": "correct horse battery" }),
    )
    .await;

    assert_eq!(
        statuses,
        [401, 401, 401],
        "a stolen device token is limited too, even with the right password"
    );
    assert_eq!(
        without_device, 200,
        "the device's failures are not the account's"
    );
}
