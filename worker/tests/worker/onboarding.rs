//! The onboarding-pdf job: rendered, stored, and downloadable by its owner.

use chrono::{DateTime, Utc};
use serde_json::Value;
use testkit::{TestApp, job_id};

/// The guide's text, as a PDF reader extracts it, with each run of
/// whitespace made one space (extractors guess spacing from glyph gaps).
fn text_of(pdf: &[u8]) -> String {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let text =
        pdf_extract::extract_text_from_mem(pdf).expect("the PDF parses and its text extracts");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn download(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    app.get("/api/me/onboarding.pdf", token).await
}

/// The text of `token`'s guide, downloaded as its owner.
async fn guide_text(app: &TestApp, token: &str) -> String {
    let pdf = download(app, Some(token)).await.bytes().await.expect("PDF");
    text_of(&pdf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_renders_a_personal_onboarding_guide_its_owner_can_download() {
    let mut app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up("ada@example.com", "Ada Lovelace").await;
    let token = signup["token"].as_str().expect("token");
    let user_id = signup["user"]["id"].as_str().expect("user id");
    let job = job_id(&signup, "onboarding-pdf");

    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&job).await, "completed");

    let status = app.job_status(&job, Some(token)).await;
    let pages = status["result"]["pages"].as_u64().expect("page count");
    assert!((1..=2).contains(&pages), "one or two pages: {status}");
    assert_eq!(
        app.me(token).await["onboarding_pdf_url"],
        "http://app.test/api/me/onboarding.pdf"
    );
    let response = download(&app, Some(token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert_eq!(response.headers()["cache-control"], "private, no-cache");
    let pdf = response.bytes().await.expect("the PDF downloads");
    let stored = std::fs::read(
        app.storage_dir()
            .join(format!("users/{user_id}/onboarding.pdf")),
    )
    .expect("the guide is stored at its deterministic key");
    assert_eq!(pdf, stored);

    let text = text_of(&pdf);
    let created_at: DateTime<Utc> = signup["user"]["created_at"]
        .as_str()
        .and_then(|at| at.parse().ok())
        .expect("created_at is a timestamp");
    for expected in [
        "Ada Lovelace".to_owned(),
        format!("since {}", created_at.format("%-d %B %Y")),
        "Getting started".to_owned(),
        "Upload a profile photo.".to_owned(),
        "http://app.test/".to_owned(),
    ] {
        assert!(
            text.contains(&expected),
            "{expected:?} is missing from: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_onboarding_guide_is_404_until_rendered_and_each_user_gets_only_their_own() {
    let mut app = TestApp::spawn_without_worker().await;
    let ada = app.sign_up("ada@example.com", "Ada Lovelace").await;
    let ada_token = ada["token"].as_str().expect("token");

    assert_eq!(app.me(ada_token).await["onboarding_pdf_url"], Value::Null);
    let early = download(&app, Some(ada_token)).await;
    assert_eq!(early.status(), 404);
    let body: Value = early.json().await.expect("JSON error");
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(download(&app, None).await.status(), 401);

    app.start_worker();
    let grace = app.sign_up("grace@example.com", "Grace Hopper").await;
    let grace_token = grace["token"].as_str().expect("token");
    app.run_jobs_until_idle().await;
    assert_eq!(
        app.job_state(&job_id(&ada, "onboarding-pdf")).await,
        "completed"
    );
    app.run_jobs_until_idle().await;
    assert_eq!(
        app.job_state(&job_id(&grace, "onboarding-pdf")).await,
        "completed"
    );

    let (ada_text, grace_text) = (
        guide_text(&app, ada_token).await,
        guide_text(&app, grace_token).await,
    );
    assert!(ada_text.contains("Ada Lovelace") && !ada_text.contains("Grace Hopper"));
    assert!(grace_text.contains("Grace Hopper") && !grace_text.contains("Ada Lovelace"));
    assert_eq!(download(&app, Some("not-a-token")).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_in_other_scripts_are_drawn_with_the_embedded_fonts() {
    let mut app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up("dmitri@example.com", "Дмитрий 山田太郎").await;
    let token = signup["token"].as_str().expect("token");
    let job = job_id(&signup, "onboarding-pdf");
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&job).await, "completed");

    let text = guide_text(&app, token).await;
    assert!(text.contains("Дмитрий 山田太郎"), "{text}");
    let status = app.job_status(&job, Some(token)).await;
    assert_eq!(
        status["result"]["unsupported_characters"],
        Value::Null,
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_no_embedded_font_can_draw_still_gets_its_guide_and_the_gap_is_reported() {
    let mut app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up("minjun@example.com", "Kim 김민준").await;
    let token = signup["token"].as_str().expect("token");
    let job = job_id(&signup, "onboarding-pdf");
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&job).await, "completed");

    let status = app.job_status(&job, Some(token)).await;
    assert_eq!(
        status["result"]["unsupported_characters"], "김민준",
        "{status}"
    );
    assert!(guide_text(&app, token).await.contains("Getting started"));
}
