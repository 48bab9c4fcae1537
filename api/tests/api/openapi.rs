//! The OpenAPI document says what the routes really answer: every documented
//! operation is called, and each answer's status must be documented and its
//! JSON body must validate against the documented schema, with no field the
//! document does not name.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use testkit::TestApp;
use testkit::app::ADMIN_TOKEN;
use testkit::images::{jpeg, photo};

/// The document and what the test has checked against it.
struct Contract {
    document: Value,
    checked: BTreeSet<(String, String)>,
}

impl Contract {
    async fn fetch(app: &TestApp) -> Self {
        let response = app.get("/api/openapi.json", None).await;
        assert_eq!(response.status(), 200);
        let document: Value = response.json().await.expect("the document is JSON");
        assert_eq!(document["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
        Self {
            document,
            checked: BTreeSet::new(),
        }
    }

    /// Checks `response` (to `method` on the route `template`) against the
    /// document and returns its JSON body (`Null` when it has none).
    async fn check(&mut self, method: &str, template: &str, response: reqwest::Response) -> Value {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            });
        let bytes = response.bytes().await.expect("the body");
        let operation = &self.document["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let documented = &operation["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {template} answered {status}, which is not documented"
        );
        self.checked
            .insert((method.to_owned(), template.to_owned()));
        let Some(content_type) = content_type.filter(|_| !bytes.is_empty()) else {
            assert!(
                documented.get("content").is_none() || status == 304,
                "{method} {template} {status}: a body is documented but none came"
            );
            return Value::Null;
        };
        let media = &documented["content"][&content_type];
        assert!(
            media.is_object(),
            "{method} {template} {status}: `{content_type}` is not documented: {documented}"
        );
        if content_type != "application/json" {
            return Value::Null;
        }
        let body: Value = serde_json::from_slice(&bytes).expect("JSON as documented");
        let validator = jsonschema::validator_for(&self.strict_schema(&media["schema"]))
            .expect("the documented schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|error| format!("{error} at {}", error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status} does not match the document: {errors:#?}\n{body}"
        );
        body
    }

    /// `schema` with the document's components beside it, where every
    /// reference to a schema is closed (`unevaluatedProperties: false`,
    /// which sees through `allOf`), so a field the code sends but the
    /// document omits fails too. References inside `allOf` stay open: they
    /// are parts of one object.
    fn strict_schema(&self, schema: &Value) -> Value {
        let mut root = schema.clone();
        root["components"] = self.document["components"].clone();
        close_references(&mut root, false);
        root
    }
}

fn close_references(schema: &mut Value, part_of_all_of: bool) {
    match schema {
        Value::Object(object) => {
            if object.contains_key("$ref") && !part_of_all_of {
                object.insert("unevaluatedProperties".into(), json!(false));
            }
            for (key, value) in object.iter_mut() {
                if key == "allOf" {
                    for part in value.as_array_mut().into_iter().flatten() {
                        close_references(part, true);
                    }
                } else {
                    close_references(value, false);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| close_references(item, false)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_the_openapi_document_says() {
    const UNSUBSCRIBE_SECRET: &str = "the contract test's unsubscribe secret";
    let mut app = TestApp::spawn_without_worker_with(|s| {
        s.providers.stripe_webhook_secret = Some(testkit::stripe::WEBHOOK_SECRET.into());
        s.mail.unsubscribe_secret = Some(UNSUBSCRIBE_SECRET.into());
        // Due at once, so the test's jobs all finish.
        s.mail.follow_up_delay = std::time::Duration::ZERO;
    })
    .await;
    let mut contract = Contract::fetch(&app).await;
    let c = &mut contract;

    // Account.
    let signup = app.sign_up("contract@example.com", "Contract").await;
    let token = signup["token"].as_str().expect("token").to_owned();
    let token = token.as_str();
    let again = app
        .post_json("/api/signup", &json!({"email": "Contract@example.com", "password": "correct horse battery", "name": "C"}))
        .await;
    c.check("post", "/api/signup", again).await;
    let invalid = app
        .post_json("/api/signup", &json!({"email": "nope", "password": 1}))
        .await;
    let error = c.check("post", "/api/signup", invalid).await;
    assert!(error["error"]["fields"].is_object());
    let fresh = app
        .post_json("/api/signup", &json!({"email": "second@example.com", "password": "correct horse battery", "name": "Second"}))
        .await;
    c.check("post", "/api/signup", fresh).await;
    let login = app
        .post_json(
            "/api/login",
            &json!({"email": "contract@example.com", "password": "correct horse battery"}),
        )
        .await;
    c.check("post", "/api/login", login).await;
    let wrong = app
        .post_json(
            "/api/login",
            &json!({"email": "contract@example.com", "password": "wrong password"}),
        )
        .await;
    c.check("post", "/api/login", wrong).await;
    c.check("get", "/api/me", app.get("/api/me", Some(token)).await)
        .await;
    c.check("get", "/api/me", app.get("/api/me", None).await)
        .await;
    c.check(
        "get",
        "/api/me/onboarding.pdf",
        app.get("/api/me/onboarding.pdf", Some(token)).await,
    )
    .await;

    // Jobs.
    let job = testkit::job_id(&signup, "welcome-email");
    let path = format!("/api/jobs/{job}");
    let first = app.get(&path, Some(token)).await;
    let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
    c.check("get", "/api/jobs/{id}", first).await;
    c.check(
        "get",
        "/api/jobs/{id}",
        app.get_if_none_match(&path, Some(token), &etag).await,
    )
    .await;
    c.check(
        "get",
        "/api/jobs/{id}",
        app.get("/api/jobs/not-a-job", Some(token)).await,
    )
    .await;
    c.check(
        "get",
        "/api/me/jobs",
        app.get("/api/me/jobs?limit=2", Some(token)).await,
    )
    .await;
    c.check(
        "get",
        "/api/me/jobs",
        app.get("/api/me/jobs?limit=0", Some(token)).await,
    )
    .await;

    // Photos, then every job done: the avatar, the guide, finished records.
    let upload = app
        .upload(token, "photo", &jpeg(800, 600, &photo(800, 600)))
        .await;
    let upload = c.check("post", "/api/photos", upload).await;
    c.check(
        "post",
        "/api/photos",
        app.upload(token, "photo", b"GIF89a not a photo").await,
    )
    .await;
    app.run_jobs_until_idle().await;
    let me = c
        .check("get", "/api/me", app.get("/api/me", Some(token)).await)
        .await;
    assert!(me["avatar"].is_object(), "the avatar is there: {me}");
    c.check(
        "get",
        "/api/me/onboarding.pdf",
        app.get("/api/me/onboarding.pdf", Some(token)).await,
    )
    .await;
    c.check("get", "/api/jobs/{id}", app.get(&path, Some(token)).await)
        .await;
    c.check(
        "get",
        "/api/me/jobs",
        app.get("/api/me/jobs", Some(token)).await,
    )
    .await;
    let photo_id = upload["photo"]["id"].as_str().expect("photo id");
    for file in ["thumbnail.jpg", "nothing.jpg"] {
        let response = app
            .get(&format!("/media/photos/{photo_id}/{file}"), None)
            .await;
        c.check("get", "/media/photos/{photo_id}/{file}", response)
            .await;
    }
    let original = format!("/media/photos/{photo_id}/original");
    c.check(
        "get",
        "/media/photos/{photo_id}/original",
        app.get(&original, Some(token)).await,
    )
    .await;
    c.check(
        "get",
        "/media/photos/{photo_id}/original",
        app.get(&original, None).await,
    )
    .await;

    // Operations.
    c.check("get", "/healthz", app.get("/healthz", None).await)
        .await;
    c.check("get", "/readyz", app.get("/readyz", None).await)
        .await;
    c.check(
        "get",
        "/api/admin/queues",
        app.get("/api/admin/queues", Some(ADMIN_TOKEN)).await,
    )
    .await;
    c.check(
        "get",
        "/api/admin/queues",
        app.get("/api/admin/queues", Some(token)).await,
    )
    .await;
    let admin_job = format!("/api/admin/jobs/{job}");
    c.check(
        "get",
        "/api/admin/jobs/{id}",
        app.get(&admin_job, Some(ADMIN_TOKEN)).await,
    )
    .await;
    let admin = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let failed = "/api/admin/queues/welcome-email/failed";
    c.check(
        "get",
        "/api/admin/queues/{queue}/failed",
        admin(reqwest::Method::GET, failed).await.expect("answer"),
    )
    .await;
    c.check(
        "get",
        "/api/admin/queues/{queue}/failed",
        admin(reqwest::Method::GET, "/api/admin/queues/nope/failed")
            .await
            .expect("answer"),
    )
    .await;
    let retried = admin(reqwest::Method::POST, &format!("{failed}/retry"))
        .await
        .expect("answer");
    c.check("post", "/api/admin/queues/{queue}/failed/retry", retried)
        .await;
    let missing = format!("{failed}/{}", uuid::Uuid::now_v7());
    c.check(
        "post",
        "/api/admin/queues/{queue}/failed/{id}/retry",
        admin(reqwest::Method::POST, &format!("{missing}/retry"))
            .await
            .expect("answer"),
    )
    .await;
    c.check(
        "delete",
        "/api/admin/queues/{queue}/failed/{id}",
        admin(reqwest::Method::DELETE, &missing)
            .await
            .expect("answer"),
    )
    .await;
    for action in ["pause", "resume"] {
        let path = format!("/api/admin/queues/image-resize/{action}");
        let template = format!("/api/admin/queues/{{queue}}/{action}");
        c.check(
            "post",
            &template,
            admin(reqwest::Method::POST, &path).await.expect("answer"),
        )
        .await;
    }
    let session = app
        .post_json("/api/admin/session", &json!({ "token": ADMIN_TOKEN }))
        .await;
    c.check("post", "/api/admin/session", session).await;
    let wrong = app
        .post_json("/api/admin/session", &json!({ "token": "guess" }))
        .await;
    c.check("post", "/api/admin/session", wrong).await;
    c.check(
        "delete",
        "/api/admin/session",
        admin(reqwest::Method::DELETE, "/api/admin/session")
            .await
            .expect("answer"),
    )
    .await;
    for path in ["/api/admin/incidents", "/api/admin/audit"] {
        c.check(
            "get",
            path,
            admin(reqwest::Method::GET, path).await.expect("answer"),
        )
        .await;
    }
    c.check(
        "delete",
        "/api/admin/sessions",
        admin(reqwest::Method::DELETE, "/api/admin/sessions")
            .await
            .expect("answer"),
    )
    .await;

    // Sessions last: they end the token.
    let delete = |path: &str, token: &str| {
        app.client
            .delete(format!("{}{path}", app.address))
            .bearer_auth(token.to_owned())
            .send()
    };
    c.check(
        "delete",
        "/api/session",
        delete("/api/session", token).await.expect("answer"),
    )
    .await;
    c.check(
        "delete",
        "/api/session",
        delete("/api/session", token).await.expect("answer"),
    )
    .await;
    let other = app
        .post_json(
            "/api/login",
            &json!({"email": "second@example.com", "password": "correct horse battery"}),
        )
        .await
        .json::<Value>()
        .await
        .expect("json");
    let other = other["token"].as_str().expect("token");
    c.check(
        "delete",
        "/api/sessions",
        delete("/api/sessions", other).await.expect("answer"),
    )
    .await;

    // Password reset: asked for, a bad link, a weak password, a good link.
    let forgot = app
        .post_json(
            "/api/password/forgot",
            &json!({"email": "contract@example.com"}),
        )
        .await;
    contract.check("post", "/api/password/forgot", forgot).await;
    let resetting = app.sign_up("reset@example.com", "Reset").await;
    let user_id: uuid::Uuid = resetting["user"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a user id");
    let (link, hash) = store::tokens::mint().expect("random");
    store::resets::issue(
        &app.pool,
        user_id,
        0,
        &hash,
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("a reset link");
    for (token, password) in [
        ("not-a-link", "a brand new password"),
        (link.as_str(), "short"),
        (link.as_str(), "a brand new password"),
    ] {
        let answer = app
            .post_json(
                "/api/password/reset",
                &json!({"token": token, "password": password}),
            )
            .await;
        contract.check("post", "/api/password/reset", answer).await;
    }

    // Confirming an address: a resend, a bad link, a good one, then a
    // resend that has nothing to do.
    let confirming = app
        .sign_up_unverified("confirm@example.com", "Confirm")
        .await;
    let session = confirming["token"].as_str().expect("a token");
    let resend = || async {
        app.send_json(
            reqwest::Method::POST,
            "/api/email/verify/resend",
            session,
            &json!({}),
        )
        .await
    };
    contract
        .check("post", "/api/email/verify/resend", resend().await)
        .await;
    let user_id: uuid::Uuid = confirming["user"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a user id");
    let (link, hash) = store::tokens::mint().expect("random");
    store::verifications::issue(
        &app.pool,
        user_id,
        0,
        "confirm@example.com",
        &hash,
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("a confirmation link");
    for token in ["not-a-link", link.as_str()] {
        let answer = app
            .post_json("/api/email/verify", &json!({ "token": token }))
            .await;
        contract.check("post", "/api/email/verify", answer).await;
    }
    contract
        .check("post", "/api/email/verify/resend", resend().await)
        .await;

    // A password change (wrong, weak, right), then a deletion (wrong, right).
    let changing = app.sign_up("change@example.com", "Change").await;
    let token = changing["token"].as_str().expect("a token");
    for (current, new) in [
        ("not the password", "a brand new password"),
        ("correct horse battery", "short"),
        ("correct horse battery", "a brand new password"),
    ] {
        let body = json!({"current_password": current, "new_password": new});
        let answer = app
            .send_json(reqwest::Method::POST, "/api/me/password", token, &body)
            .await;
        contract.check("post", "/api/me/password", answer).await;
    }
    for (password, email) in [
        ("not the password", "moved@example.com"),
        ("a brand new password", "not an address"),
        ("a brand new password", "moved@example.com"),
    ] {
        let body = json!({ "password": password, "email": email });
        let answer = app
            .send_json(reqwest::Method::POST, "/api/me/email", token, &body)
            .await;
        contract.check("post", "/api/me/email", answer).await;
    }
    for password in ["not the password", "a brand new password"] {
        let body = json!({ "password": password });
        let answer = app
            .send_json(reqwest::Method::DELETE, "/api/me", token, &body)
            .await;
        contract.check("delete", "/api/me", answer).await;
    }

    // Mail preferences: saved, refused without a session or with a bad
    // body; the one-click link with a good token and a forged one.
    let preferring = app.sign_up("prefers@example.com", "Prefers").await;
    let user_id: uuid::Uuid = preferring["user"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a user id");
    let session = preferring["token"].as_str().expect("a token");
    for (token, body) in [
        (session, json!({ "product_email": false })),
        (session, json!({ "product_email": "no" })),
        ("not-a-session", json!({ "product_email": true })),
    ] {
        let answer = app
            .send_json(reqwest::Method::PUT, "/api/me/preferences", token, &body)
            .await;
        contract.check("put", "/api/me/preferences", answer).await;
    }
    let key = store::unsubscribe::UnsubscribeKey::new(&UNSUBSCRIBE_SECRET.into());
    for token in [key.token(user_id), "forged.token".to_owned()] {
        let answer = app
            .client
            .post(format!(
                "{}/api/email/unsubscribe?token={token}",
                app.address
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("answered");
        contract
            .check("post", "/api/email/unsubscribe", answer)
            .await;
    }

    // The Stripe webhook: an event, the same again, a forged one.
    let event = testkit::stripe::event(
        "evt_contract",
        "customer.deleted",
        testkit::stripe::now(),
        json!({ "id": "cus_contract", "object": "customer" }),
    );
    let body = serde_json::to_vec(&event).expect("JSON");
    let signed = testkit::stripe::signature(
        testkit::stripe::WEBHOOK_SECRET,
        testkit::stripe::now(),
        &body,
    );
    for signature in [signed.as_str(), signed.as_str(), "t=1,v1=00"] {
        let answer = app.post_stripe_webhook(&body, Some(signature)).await;
        contract.check("post", "/api/webhooks/stripe", answer).await;
    }

    let documented: BTreeSet<(String, String)> = contract.document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .into_iter()
                .flat_map(|operations| operations.keys())
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    assert_eq!(
        contract.checked, documented,
        "every documented operation was called"
    );
}
