//! What a test does to a [`TestApp`] over HTTP, as a client would: sign up,
//! upload, poll jobs, and wait for them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::app::{ADMIN_TOKEN, TestApp};
use crate::wait;

impl TestApp {
    /// `POST <path>` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_json_at(&self.address, path, body).await
    }

    /// [`post_json`](Self::post_json) to the api instance at `address`.
    pub async fn post_json_at(&self, address: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{address}{path}"))
            .json(body)
            .send()
            .await
            .expect("the api answers")
    }

    /// `<method> <path>` with a JSON body, as `token`'s owner.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("the api answers")
    }

    /// `GET <path>`, with a bearer token if given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the api answers")
    }

    /// `GET <path>` revalidating what the client holds: `If-None-Match: etag`.
    pub async fn get_if_none_match(
        &self,
        path: &str,
        token: Option<&str>,
        etag: &str,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .get(format!("{}{path}", self.address))
            .header("if-none-match", etag);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the api answers")
    }

    /// `POST /api/photos` with `bytes` as the multipart field `field`.
    pub async fn upload(&self, token: &str, field: &str, bytes: &[u8]) -> reqwest::Response {
        self.upload_at(&self.address, token, field, bytes).await
    }

    /// [`upload`](Self::upload) to the api instance at `address`.
    pub async fn upload_at(
        &self,
        address: &str,
        token: &str,
        field: &str,
        bytes: &[u8],
    ) -> reqwest::Response {
        let (content_type, body) = crate::multipart(field, bytes);
        self.client
            .post(format!("{address}/api/photos"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the api answers")
    }

    /// `GET /api/me` as `token`'s owner, expecting a 200.
    pub async fn me(&self, token: &str) -> Value {
        let response = self.get("/api/me", Some(token)).await;
        assert_eq!(response.status(), 200, "the token is valid");
        response.json().await.expect("the profile is JSON")
    }

    /// Signs up and confirms the address as its owner would: the 201 body,
    /// whose `jobs` list the jobs the confirmation started first (welcome
    /// email, Stripe customer), then the signup's own. With the in-process
    /// worker running, the confirmation email is sent first (so a test sees
    /// exactly one per signup); see [`TestApp::confirm`]. Panics on any
    /// other answer.
    pub async fn sign_up(&self, email: &str, name: &str) -> Value {
        let mut body = self.sign_up_unverified(email, name).await;
        if self.worker.is_some() {
            let sent = crate::job_id(&body, "account-email");
            self.wait_for_job_state(&sent, "completed", crate::DEADLINE)
                .await;
        }
        self.confirm(&mut body).await;
        body
    }

    /// [`sign_up`](Self::sign_up) with `meanwhile` done after the
    /// confirmation email has gone out and before the address is
    /// confirmed: where a test that fails or slows the *welcome* email sets
    /// that up. A worker (in-process or a process) must be running.
    pub async fn sign_up_and_meanwhile(
        &self,
        email: &str,
        name: &str,
        meanwhile: impl FnOnce(&Self),
    ) -> Value {
        let mut body = self.sign_up_unverified(email, name).await;
        let sent = crate::job_id(&body, "account-email");
        self.wait_for_job_state(&sent, "completed", crate::DEADLINE)
            .await;
        meanwhile(self);
        self.confirm(&mut body).await;
        body
    }

    /// Follows the confirmation link of a signup's address, as its owner
    /// would (the link is made here as the worker makes it, so no email
    /// needs to arrive), and adds the jobs it started to the front of
    /// `signup`'s `jobs`.
    pub async fn confirm(&self, signup: &mut Value) {
        self.confirm_at(&self.address, signup).await;
    }

    /// [`confirm`](Self::confirm) through the api instance at `address`.
    pub async fn confirm_at(&self, address: &str, signup: &mut Value) {
        let body = signup;
        let email = body["user"]["email"]
            .as_str()
            .expect("an address")
            .to_owned();
        let user_id = body["user"]["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("a user id");
        let (token, hash) = store::tokens::mint().expect("random");
        let ttl = Duration::from_secs(600);
        let epoch = store::users::standing(&self.pool, user_id)
            .await
            .expect("the account is read")
            .expect("the account exists")
            .epoch;
        store::verifications::issue(&self.pool, user_id, epoch, &email, &hash, ttl)
            .await
            .expect("a confirmation link");
        let response = self
            .post_json_at(address, "/api/email/verify", &json!({ "token": token }))
            .await;
        let status = response.status();
        let verified: Value = response.json().await.expect("verify answers JSON");
        assert_eq!(status, 200, "confirming the address failed: {verified}");
        let mut jobs = verified["jobs"].as_array().cloned().unwrap_or_default();
        jobs.extend(body["jobs"].as_array().cloned().unwrap_or_default());
        body["jobs"] = Value::Array(jobs);
        body["user"] = verified["user"].clone();
    }

    /// Signs up without confirming the address: the 201 body, panicking on
    /// any other answer.
    pub async fn sign_up_unverified(&self, email: &str, name: &str) -> Value {
        self.sign_up_unverified_at(&self.address, email, name).await
    }

    /// [`sign_up_unverified`](Self::sign_up_unverified) through the api
    /// instance at `address`.
    pub async fn sign_up_unverified_at(&self, address: &str, email: &str, name: &str) -> Value {
        let response = self
            .post_json_at(
                address,
                "/api/signup",
                &json!({ "email": email, "password": "correct horse battery", "name": name }),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("signup answers JSON");
        assert_eq!(status, 201, "signup failed: {body}");
        body
    }

    /// `GET /api/jobs/{id}` as `token`'s owner, expecting a 200.
    pub async fn job_status(&self, job_id: &str, token: Option<&str>) -> Value {
        let response = self.get(&format!("/api/jobs/{job_id}"), token).await;
        assert_eq!(
            response.status(),
            200,
            "job {job_id} is visible to its owner"
        );
        response.json().await.expect("job status is JSON")
    }

    /// The state of a job record, read from the database.
    pub async fn job_state(&self, job_id: &str) -> String {
        let id = uuid::Uuid::parse_str(job_id).expect("job ids are uuids");
        sqlx::query_scalar::<_, String>("select state from jobs where job_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("the job record exists")
    }

    /// The job as operators see it (`GET /api/admin/jobs/{id}`), with the
    /// internal `error_detail` end users never get.
    pub async fn operator_view(&self, job_id: &str) -> Value {
        let response = self
            .get(&format!("/api/admin/jobs/{job_id}"), Some(ADMIN_TOKEN))
            .await;
        assert_eq!(
            response.status(),
            200,
            "job {job_id} is visible to operators"
        );
        response
            .json()
            .await
            .expect("the operator's job view is JSON")
    }

    /// Runs the jobs there are until none is left to do, starting the
    /// in-process worker if none runs: every job record is `completed` or
    /// `failed` (a retry waiting out its backoff is not done). Panics after
    /// [`DEADLINE`](crate::DEADLINE). For tests that need the work done, not
    /// a particular moment in it.
    pub async fn run_jobs_until_idle(&mut self) {
        if self.worker.is_none() {
            self.start_worker();
        }
        wait::until("every job to finish", crate::DEADLINE, || async {
            let unfinished: i64 = sqlx::query_scalar(
                "select count(*) from jobs where state not in ('completed', 'failed')",
            )
            .fetch_one(&self.pool)
            .await
            .expect("the jobs table is readable");
            (unfinished == 0).then_some(())
        })
        .await;
    }

    /// Waits until every job a signup answer lists has completed.
    pub async fn wait_for_signup_jobs(&self, signup: &Value) {
        for job in signup["jobs"]
            .as_array()
            .expect("a signup answer lists its jobs")
        {
            let id = job["id"].as_str().expect("a job id");
            self.wait_for_job_state(id, "completed", crate::DEADLINE)
                .await;
        }
    }

    /// Waits until the job record reaches `state`.
    pub async fn wait_for_job_state(&self, job_id: &str, state: &str, deadline: Duration) {
        wait::until(&format!("job {job_id} to be {state}"), deadline, || async {
            (self.job_state(job_id).await == state).then_some(())
        })
        .await;
    }
}
