//! Generated inputs against every route: whatever bytes a request carries,
//! the answer is never a 5xx, and every error is in the documented JSON shape.
//!
//! proptest drives the black-box api (one app per property, hundreds of
//! requests). Inputs that once found bugs are kept below as plain tests.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::TestApp;

/// Requests per property; enough to reach odd corners, cheap enough for CI.
const CASES: u32 = 150;

/// Runs `property` on `CASES` generated inputs, each against the live app.
fn check<S: Strategy>(
    app: &TestApp,
    strategy: S,
    property: impl AsyncFn(&TestApp, S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = tokio::task::block_in_place(|| {
        runner.run(&strategy, |input| handle.block_on(property(app, input)))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// The answer is not a server error, and an error answer has our shape.
async fn well_formed(response: reqwest::Response) -> Result<u16, TestCaseError> {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.bytes().await.unwrap_or_default();
    prop_assert!(status < 500, "{status}: {}", String::from_utf8_lossy(&body));
    if status >= 400 {
        prop_assert!(
            content_type.starts_with("application/json"),
            "{status} {content_type}"
        );
        let error: Value = serde_json::from_slice(&body)
            .map_err(|e| TestCaseError::fail(format!("{status}: not JSON: {e}")))?;
        prop_assert!(error["error"]["code"].is_string(), "{error}");
        prop_assert!(error["error"]["message"].is_string(), "{error}");
    }
    Ok(status)
}

/// Any JSON value, strings drawn from all of Unicode (NUL and controls too).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A path segment of arbitrary bytes, percent-encoded.
fn segment() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..48).prop_map(|bytes| {
        bytes
            .iter()
            .map(|&byte| match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    char::from(byte).to_string()
                }
                _ => format!("%{byte:02X}"),
            })
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_and_login_never_answer_a_server_error_whatever_the_fields() {
    let app = TestApp::spawn_without_worker().await;
    let fields = (any_json(), any_json(), any_json(), prop::bool::ANY);

    check(
        &app,
        fields,
        async |app, (email, password, name, is_login)| {
            let (path, body) = if is_login {
                (
                    "/api/login",
                    json!({ "email": email, "password": password }),
                )
            } else {
                (
                    "/api/signup",
                    json!({ "email": email, "password": password, "name": name }),
                )
            };
            let status = well_formed(app.post_json(path, &body).await).await?;
            prop_assert!(
                matches!(status, 200 | 201 | 401 | 409 | 413 | 422),
                "{status}"
            );
            Ok(())
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_arbitrary_bytes_get_a_4xx_in_our_shape() {
    let app = TestApp::spawn_without_worker().await;
    let inputs = (
        prop::collection::vec(any::<u8>(), 0..512),
        prop::sample::select(vec!["/api/signup", "/api/login", "/api/photos"]),
        prop::sample::select(vec![
            "application/json",
            "multipart/form-data; boundary=x",
            "multipart/form-data",
            "text/plain",
            "",
        ]),
    );
    let token = app.sign_up("fuzz@example.com", "Fuzz").await["token"]
        .as_str()
        .expect("token")
        .to_owned();

    check(&app, inputs, async |app, (body, path, content_type)| {
        let mut request = app
            .client
            .post(format!("{}{path}", app.address))
            .bearer_auth(&token)
            .body(body);
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request
            .send()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let status = well_formed(response).await?;
        prop_assert!((400..500).contains(&status), "{status}");
        Ok(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_method_on_any_path_is_answered_in_our_shape() {
    let app = TestApp::spawn_without_worker().await;
    let token = app.sign_up("paths@example.com", "Paths").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let inputs = (
        prop::sample::select(vec![
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
        ]),
        prop::sample::select(vec![
            "/api/jobs/",
            "/media/photos/",
            "/api/",
            "/api/me/",
            "/",
            "/admin/",
            "/api/admin/queues/",
        ]),
        segment(),
        prop::option::of(segment()),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    );

    check(
        &app,
        inputs,
        async |app, (method, prefix, first, second, auth)| {
            let mut path = format!("{prefix}{first}");
            if let Some(second) = second {
                path = format!("{path}/{second}");
            }
            let method = Method::from_bytes(method.as_bytes()).expect("a standard method");
            let mut request = app
                .client
                .request(method.clone(), format!("{}{path}", app.address));
            match auth {
                Some(bytes) => {
                    if let Ok(value) = reqwest::header::HeaderValue::from_bytes(&bytes) {
                        request = request.header("authorization", value);
                    }
                }
                None => request = request.bearer_auth(&token),
            }
            let response = request
                .send()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            if method == Method::HEAD {
                prop_assert!(response.status().as_u16() < 500);
                return Ok(());
            }
            well_formed(response).await?;
            Ok(())
        },
    );
}

#[tokio::test]
async fn a_malformed_media_path_is_a_4xx_in_our_shape() {
    let app = TestApp::spawn_without_worker().await;

    for (path, status, code) in [
        ("/media/photos/not-a-uuid/large.jpg", 404, "not_found"),
        ("/media/photos/not-a-uuid/original", 401, "unauthorized"),
        ("/media/photos/%FF/large.jpg", 400, "bad_request"),
    ] {
        let response = app.get(path, None).await;

        assert_eq!(response.status(), status, "{path}");
        let error: Value = response.json().await.expect("JSON");
        assert_eq!(error["error"]["code"], code, "{path}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let app = TestApp::spawn_without_worker().await;

    let response = app
        .client
        .put(format!("{}/api/signup", app.address))
        .send()
        .await
        .expect("answers");

    assert_eq!(response.status(), 405);
    let error: Value = response.json().await.expect("JSON");
    assert_eq!(error["error"]["code"], "method_not_allowed");
}
