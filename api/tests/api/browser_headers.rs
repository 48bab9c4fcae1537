//! What the api tells browsers: security headers on every answer, the web
//! app's strict policy, and CORS only for the origins it is told to allow.

use reqwest::Method;
use testkit::TestApp;

async fn request(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the api answers")
}

#[tokio::test]
async fn the_web_app_is_served_at_the_root_with_a_policy_that_runs_no_inline_script() {
    let app = TestApp::spawn_without_worker().await;

    let page = app.get("/", None).await;

    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"),
        "{policy}"
    );
    let html = page.text().await.expect("html");
    assert!(html.contains(r#"<script type="module" src="/app.js"></script>"#));
    assert!(!html.contains("<script>"), "no inline script");
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/ui.js", "text/javascript"),
        ("/js/api.js", "text/javascript"),
        ("/js/session.js", "text/javascript"),
        ("/js/forms.js", "text/javascript"),
        ("/js/auth.js", "text/javascript"),
        ("/js/links.js", "text/javascript"),
        ("/js/profile.js", "text/javascript"),
        ("/js/photo.js", "text/javascript"),
        ("/js/jobs.js", "text/javascript"),
        ("/js/account.js", "text/javascript"),
        ("/js/labels.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let asset = app.get(path, None).await;
        assert_eq!(asset.status(), 200, "{path}");
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with(kind),
            "{path}"
        );
        let etag = asset.headers()["etag"].to_str().expect("ascii").to_owned();
        assert_eq!(
            app.get_if_none_match(path, None, &etag).await.status(),
            304,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_pages_name_every_queue_with_the_label_of_the_job_catalogue() {
    let app = TestApp::spawn_without_worker().await;

    let module = app.get("/js/labels.js", None).await;

    assert_eq!(module.status(), 200);
    let policy = module.headers()["content-security-policy"].clone();
    let text = module.text().await.expect("javascript");
    assert!(text.contains("export const labelOf"), "{text}");
    for queue in catalogue::QueueName::ALL {
        let entry = format!("\"{}\":\"{}\"", queue.as_str(), queue.label());
        assert!(text.contains(&entry), "{entry} in {text}");
    }
    // The pages load it as a module of their own origin, which the policy allows.
    assert!(
        policy
            .to_str()
            .expect("ascii")
            .contains("script-src 'self';"),
        "{policy:?}"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_errors_included() {
    let app = TestApp::spawn_without_worker().await;
    for path in ["/", "/healthz", "/api/me", "/no/such/route"] {
        let response = app.get(path, None).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .expect("ascii")
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
    }
    let data = app.get("/healthz", None).await;
    assert_eq!(
        data.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

#[tokio::test]
async fn without_allowed_origins_no_cors_header_is_sent() {
    let app = TestApp::spawn_without_worker().await;
    let preflight = request(
        &app,
        Method::OPTIONS,
        "/api/me",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ],
    )
    .await;
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let simple = request(
        &app,
        Method::GET,
        "/healthz",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert!(
        simple
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_answered_and_others_do_not() {
    let app = TestApp::spawn_without_worker_with(|s| {
        s.server.cors_allowed_origins = "https://app.example.com, http://localhost:5173"
            .parse()
            .expect("valid origins");
    })
    .await;
    let user = app.sign_up("cors@example.com", "Cors").await;
    let token = user["token"].as_str().expect("token");

    let preflight = request(
        &app,
        Method::OPTIONS,
        "/api/photos",
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
    )
    .await;
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for method in ["GET", "POST", "DELETE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    for header in ["authorization", "content-type", "if-none-match"] {
        assert!(allowed.contains(header), "{allowed}");
    }
    assert!(
        headers.get("access-control-allow-credentials").is_none(),
        "tokens, not cookies"
    );

    let actual = request(
        &app,
        Method::GET,
        "/api/me",
        &[
            ("origin", "http://localhost:5173"),
            ("authorization", &format!("Bearer {token}")),
        ],
    )
    .await;
    assert_eq!(actual.status(), 200);
    assert_eq!(
        actual.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let exposed = actual.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("retry-after"),
        "{exposed}"
    );

    let stranger = request(
        &app,
        Method::OPTIONS,
        "/api/me",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn a_page_on_an_allowed_origin_may_use_every_method_the_api_routes_and_read_the_request_id() {
    let app = TestApp::spawn_without_worker_with(|s| {
        s.server.cors_allowed_origins = "https://app.example.com".parse().expect("valid origin");
    })
    .await;
    let user = app.sign_up("cors-put@example.com", "Cors").await;
    let token = user["token"].as_str().expect("token");
    let document: serde_json::Value = app
        .get("/api/openapi.json", None)
        .await
        .json()
        .await
        .expect("the OpenAPI document is JSON");
    let mut methods: Vec<String> = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("a path item").keys())
        .filter(|key| ["get", "put", "post", "delete", "patch"].contains(&key.as_str()))
        .map(|method| method.to_uppercase())
        .collect();
    methods.sort();
    methods.dedup();
    assert!(methods.contains(&"PUT".to_owned()), "{methods:?}");

    // A browser asks before each method it has not been told it may use.
    for method in &methods {
        let preflight = request(
            &app,
            Method::OPTIONS,
            "/api/me/preferences",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", method),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
        )
        .await;
        let allowed = preflight.headers()["access-control-allow-methods"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            allowed.split(',').any(|allowed| allowed.trim() == method),
            "{method} is routed but not allowed cross-origin: {allowed}"
        );
    }

    let put = app
        .client
        .put(format!("{}/api/me/preferences", app.address))
        .header("origin", "https://app.example.com")
        .bearer_auth(token)
        .json(&serde_json::json!({ "product_email": false }))
        .send()
        .await
        .expect("the api answers");
    assert_eq!(put.status(), 200);
    assert_eq!(
        put.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = put.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(
        exposed.split(',').any(|name| name.trim() == "x-request-id"),
        "a page cannot read the id support asks for: {exposed}"
    );
    assert!(put.headers().contains_key("x-request-id"));
}
