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
