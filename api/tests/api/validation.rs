use serde_json::{Value, json};
use testkit::TestApp;

fn valid() -> Value {
    json!({ "email": "ada@example.com", "password": "correct horse battery", "name": "Ada" })
}

#[tokio::test]
async fn each_invalid_field_is_named_with_its_problem() {
    let app = TestApp::spawn_without_worker().await;
    let cases = [
        ("email", json!(null), "is required"),
        ("email", json!(""), "is required"),
        ("email", json!("not-an-email"), "must contain an @"),
        (
            "email",
            json!("ada@localhost"),
            "is not a valid email address",
        ),
        ("email", json!(42), "must be a string"),
        ("password", json!(null), "is required"),
        ("password", json!("short"), "must be at least 8 characters"),
        (
            "password",
            json!("x".repeat(129)),
            "must be at most 128 characters",
        ),
        ("name", json!(null), "is required"),
        ("name", json!("   "), "is required"),
        (
            "name",
            json!("n".repeat(101)),
            "must be at most 100 characters",
        ),
        (
            "name",
            json!("Ada\nBcc: spam@example.com"),
            "must not contain control characters",
        ),
        (
            "name",
            json!("Ada \u{202E}nimda"),
            "must not contain invisible or text-direction characters",
        ),
        (
            "name",
            json!("Ada\u{200B}"),
            "must not contain invisible or text-direction characters",
        ),
    ];
    for (field, value, problem) in cases {
        let mut body = valid();
        body[field] = value.clone();

        let response = app.post_json("/api/signup", &body).await;

        assert_eq!(response.status(), 422, "{field} = {value}");
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["error"]["code"], "validation_failed");
        assert_eq!(
            error["error"]["fields"][field], problem,
            "{field} = {value}"
        );
        assert_eq!(
            error["error"]["fields"].as_object().map(|f| f.len()),
            Some(1),
            "only {field} is wrong: {error}"
        );
    }
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(users, 0, "no invalid signup was stored");
}

#[tokio::test]
async fn an_empty_object_reports_every_missing_field() {
    let app = TestApp::spawn_without_worker().await;

    let response = app.post_json("/api/signup", &json!({})).await;

    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.expect("json");
    for field in ["email", "password", "name"] {
        assert_eq!(error["error"]["fields"][field], "is required");
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_with_the_error_shape() {
    let app = TestApp::spawn_without_worker().await;

    let response = app
        .client
        .post(format!("{}/api/signup", app.address))
        .header("content-type", "application/json")
        .body(r#"{"email": "ada@example.com","#)
        .send()
        .await
        .expect("answers");

    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "malformed_json");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_a_415() {
    let app = TestApp::spawn_without_worker().await;

    let response = app
        .client
        .post(format!("{}/api/signup", app.address))
        .header("content-type", "text/plain")
        .body(valid().to_string())
        .send()
        .await
        .expect("answers");

    assert_eq!(response.status(), 415);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "unsupported_media_type");
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let app = TestApp::spawn_without_worker().await;
    let mut body = valid();
    body["name"] = json!("a".repeat(64 * 1024));

    let response = app.post_json("/api/signup", &body).await;

    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn an_unknown_route_is_a_404_in_the_error_shape() {
    let app = TestApp::spawn_without_worker().await;

    let response = app.get("/api/nothing-here", None).await;

    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "not_found");
}
