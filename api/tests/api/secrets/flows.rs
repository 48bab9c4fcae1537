//! One user's whole life over HTTP, against an api process, as its owner,
//! its mail client, Stripe and an operator would drive it; every answer
//! and every token kept in the [`Evidence`].

use reqwest::Method;
use serde_json::{Value, json};
use testkit::RequestBuilder;
use testkit::images::{jpeg, photo};
use testkit::smtp::ReceivedEmail;
use testkit::stripe::{event, now, signature, subscription};
use testkit::{DEADLINE, TestApp, wait};

use super::evidence::{Answer, Evidence};
use super::{ADMIN_TOKEN, CUSTOMER, METRICS_TOKEN, NEW_PASSWORD, PASSWORD, STRIPE_WEBHOOK_SECRET};

const NAME: &str = "Ada";
const EMAIL: &str = "ada@example.com";
const NEW_EMAIL: &str = "ada.new@example.com";

/// The user, as far as the flows have taken them.
pub struct Flows<'a> {
    app: &'a TestApp,
    /// The api process's address.
    base: String,
    /// What was answered, and the tokens handed out.
    pub seen: Evidence,
    session: String,
    device: String,
    slack_job: String,
    stripe_job: String,
}

impl<'a> Flows<'a> {
    /// Flows against the api process at `base`.
    pub fn new(app: &'a TestApp, base: &str) -> Self {
        Self {
            app,
            base: base.to_owned(),
            seen: Evidence::default(),
            session: String::new(),
            device: String::new(),
            slack_job: String::new(),
            stripe_job: String::new(),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.app
            .client
            .request(method, format!("{}{path}", self.base))
    }

    /// `POST <path>` with a JSON body, signed in when `signed_in`.
    async fn post(&mut self, path: &str, body: Value, signed_in: bool) -> Answer {
        let mut request = self.request(Method::POST, path).json(&body);
        if signed_in {
            request = request.bearer_auth(&self.session);
        }
        self.seen.send(&format!("POST {path}"), request).await
    }

    /// `GET <path>` with `bearer` as the token, if any.
    pub async fn get(&mut self, path: &str, bearer: Option<&str>) -> Answer {
        let mut request = self.request(Method::GET, path);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.seen.send(&format!("GET {path}"), request).await
    }

    /// Takes the session and device tokens an answer hands out.
    fn signed_in(&mut self, answer: &Answer) {
        self.session = text(&answer.json["token"]);
        self.device = text(&answer.json["device_token"]);
    }

    /// The token of the link in the one email titled `subject`.
    async fn link_token(&mut self, subject: &str, link_start: &str) -> String {
        let emails = self.app.smtp.wait_for_titled(subject, 1, DEADLINE).await;
        let token = emails[0].link_token(link_start);
        self.seen
            .token(&format!("the token of {subject:?}"), &token);
        token
    }

    /// Signs up: its jobs wait until a worker starts.
    pub async fn sign_up(&mut self) {
        let body = json!({ "email": EMAIL, "password": PASSWORD, "name": NAME });
        let answer = self.post("/api/signup", body, false).await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        self.signed_in(&answer);
        self.slack_job = testkit::job_id(&answer.json, "slack-notify");
    }

    /// Follows the link of the confirmation email.
    pub async fn confirm_address(&mut self) {
        let subject = "Confirm your email address for Acme";
        let token = self
            .link_token(subject, "http://app.test/verify-email#token=")
            .await;
        let answer = self
            .post("/api/email/verify", json!({ "token": token }), false)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        self.stripe_job = testkit::job_id(&answer.json, "stripe-customer");
    }

    /// Clicks the one-click unsubscribe of the follow-up email, as a mail
    /// client does: `POST /api/email/unsubscribe?token=…`.
    pub async fn unsubscribe(&mut self) {
        let subject = format!("{NAME}, one step left");
        let emails = self.app.smtp.wait_for_titled(&subject, 1, DEADLINE).await;
        let link = header(&emails[0], "List-Unsubscribe").expect("a List-Unsubscribe header");
        let path = link
            .strip_prefix("<http://app.test")
            .and_then(|rest| rest.strip_suffix('>'))
            .expect("a link on PUBLIC_URL")
            .to_owned();
        let (_, token) = path.split_once("token=").expect("the link's token");
        self.seen.token("the unsubscribe token", token);
        let request = self
            .request(Method::POST, &path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click");
        let answer = self.seen.send("the one-click unsubscribe", request).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
    }

    /// Logs in from the device that signed up.
    pub async fn log_in(&mut self) {
        let body = json!({ "email": EMAIL, "password": PASSWORD, "device_token": self.device });
        let answer = self.post("/api/login", body, false).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        self.signed_in(&answer);
    }

    /// Forgets the password and sets a new one with the emailed link.
    pub async fn reset_password(&mut self) {
        let answer = self
            .post("/api/password/forgot", json!({ "email": EMAIL }), false)
            .await;
        assert_eq!(answer.status, 202, "{}", answer.json);
        let token = self
            .link_token(
                "Reset your Acme password",
                "http://app.test/reset-password#token=",
            )
            .await;
        let body = json!({ "token": token, "password": NEW_PASSWORD });
        let answer = self.post("/api/password/reset", body, false).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        self.signed_in(&answer);
    }

    /// Moves the account to another address, confirmed by its link.
    pub async fn change_email(&mut self) {
        let body = json!({ "password": NEW_PASSWORD, "email": NEW_EMAIL });
        let answer = self.post("/api/me/email", body, true).await;
        assert_eq!(answer.status, 202, "{}", answer.json);
        let token = self
            .link_token(
                "Confirm your new email address for Acme",
                "http://app.test/verify-email#token=",
            )
            .await;
        let answer = self
            .post("/api/email/verify", json!({ "token": token }), false)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.json);
    }

    /// Uploads a profile photo and waits for its sizes.
    pub async fn upload_photo(&mut self) {
        let (content_type, body) = testkit::multipart("photo", &jpeg(64, 48, &photo(64, 48)));
        let request = self
            .request(Method::POST, "/api/photos")
            .bearer_auth(&self.session)
            .header("content-type", content_type)
            .body(body);
        let answer = self.seen.send("POST /api/photos", request).await;
        assert_eq!(answer.status, 202, "{}", answer.json);
        let job = text(&answer.json["job"]["id"]);
        self.app
            .wait_for_job_state(&job, "completed", DEADLINE)
            .await;
        let me = self.get("/api/me", Some(&self.session.clone())).await;
        assert_eq!(me.status, 200, "{}", me.json);
    }

    /// Waits for the Stripe customer (Stripe failed the first attempt),
    /// then delivers a signed event about it, as Stripe does.
    pub async fn stripe_webhook(&mut self) {
        self.app
            .wait_for_job_state(&self.stripe_job, "completed", DEADLINE)
            .await;
        let subscription = subscription("sub_1", CUSTOMER, "active", "price_pro", now() + 86_400);
        let event = event(
            "evt_secrets",
            "customer.subscription.updated",
            now(),
            subscription,
        );
        let body = serde_json::to_vec(&event).expect("JSON");
        let request = self
            .request(Method::POST, "/api/webhooks/stripe")
            .header("content-type", "application/json")
            .header(
                "stripe-signature",
                signature(STRIPE_WEBHOOK_SECRET, now(), &body),
            )
            .body(body);
        let answer = self.seen.send("the Stripe webhook", request).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        finished(self.app, &text(&answer.json["job_id"])).await;
    }

    /// The signup's Slack notice failed for good (Slack answers 500); its
    /// owner reads the job, an operator reads why.
    pub async fn read_the_slack_failure(&mut self) {
        let job = self.slack_job.clone();
        self.app.wait_for_job_state(&job, "failed", DEADLINE).await;
        let session = self.session.clone();
        let status = self.get(&format!("/api/jobs/{job}"), Some(&session)).await;
        assert_eq!(status.status, 200, "{}", status.json);
        let failed = self
            .get("/api/admin/queues/slack-notify/failed", Some(ADMIN_TOKEN))
            .await;
        assert_eq!(failed.status, 200, "{}", failed.json);
    }

    /// An operator signs in to the dashboard and looks around; Prometheus
    /// scrapes both processes; an orchestrator probes them.
    pub async fn operate(&mut self, worker: &str) {
        let request = self
            .request(Method::POST, "/api/admin/session")
            .json(&json!({ "token": ADMIN_TOKEN }));
        let signed_in = self.seen.send("the dashboard sign-in", request).await;
        assert_eq!(signed_in.status, 204, "{}", signed_in.json);
        let cookie = signed_in
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|value| value.strip_prefix("acme_admin="))
            .and_then(|value| value.split(';').next())
            .expect("a session cookie")
            .to_owned();
        self.seen.token("the dashboard's session cookie", &cookie);
        for path in [
            format!("/api/admin/jobs/{}", self.slack_job),
            "/api/admin/queues".to_owned(),
            "/api/admin/incidents".to_owned(),
            "/api/admin/audit".to_owned(),
        ] {
            let request = self
                .request(Method::GET, &path)
                .header("cookie", format!("acme_admin={cookie}"));
            let answer = self.seen.send(&format!("GET {path}"), request).await;
            assert_eq!(answer.status, 200, "{path}: {}", answer.json);
        }
        for path in ["/metrics", "/readyz", "/healthz"] {
            let answer = self.get(path, Some(METRICS_TOKEN)).await;
            assert_eq!(answer.status, 200, "{path}");
        }
        for path in ["/metrics", "/healthz"] {
            let request = self
                .app
                .client
                .get(format!("{worker}{path}"))
                .bearer_auth(METRICS_TOKEN);
            let answer = self
                .seen
                .send(&format!("the worker's {path}"), request)
                .await;
            assert_eq!(answer.status, 200, "the worker's {path}");
        }
    }

    /// Deletes the account; the job deletes the Stripe customer too.
    pub async fn delete_account(&mut self) {
        let request = self
            .request(Method::DELETE, "/api/me")
            .bearer_auth(&self.session)
            .json(&json!({ "password": NEW_PASSWORD }));
        let answer = self.seen.send("DELETE /api/me", request).await;
        assert_eq!(answer.status, 202, "{}", answer.json);
        wait::until("the account to be gone", DEADLINE, || async {
            let left: i64 = sqlx::query_scalar("select count(*) from users")
                .fetch_one(&self.app.pool)
                .await
                .expect("countable");
            (left == 0).then_some(())
        })
        .await;
    }
}

/// Waits until job `id` has run for good, whichever way it ended.
async fn finished(app: &TestApp, id: &str) {
    wait::until(&format!("job {id} to finish"), DEADLINE, || async {
        let state = app.job_state(id).await;
        matches!(state.as_str(), "completed" | "failed").then_some(())
    })
    .await;
}

/// A JSON string, which must be there.
fn text(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected text, got {value}"))
        .to_owned()
}

/// A header of the raw message, unfolded.
fn header(email: &ReceivedEmail, name: &str) -> Option<String> {
    let unfolded = email.data.replace("\r\n ", " ").replace("\r\n\t", " ");
    let prefix = format!("{name}: ");
    unfolded
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}
