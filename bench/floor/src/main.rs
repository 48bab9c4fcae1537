//! The floor of the polling path: `GET /api/jobs/{id}` as a bare axum
//! handler with no layers, no connection limits and no ETag, doing the same
//! work the api's handler must do (find the token's user, once per token,
//! then one indexed query, then JSON). `scripts/bench-compare` runs it
//! against the same database as the api under test, so the gap between
//! the api and the limit of this machine is a number.
//!
//! `DATABASE_URL=… PORT=… cargo run --release -p floor`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use uuid::Uuid;

#[derive(Clone)]
struct Floor {
    pool: PgPool,
    users: Arc<Mutex<HashMap<[u8; 32], Uuid>>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "3999".into());
    let floor = Floor {
        pool: sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await?,
        users: Arc::default(),
    };
    let app = Router::new()
        .route("/api/jobs/{id}", get(job))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn job(State(floor): State<Floor>, Path(id): Path<Uuid>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let cached = floor
        .users
        .lock()
        .ok()
        .and_then(|users| users.get(&hash).copied());
    let user = match cached {
        Some(user) => user,
        None => {
            let found: Option<Uuid> = sqlx::query_scalar(
                "select user_id from api_tokens where token_hash = $1 and expires_at > now()",
            )
            .bind(&hash[..])
            .fetch_optional(&floor.pool)
            .await
            .ok()
            .flatten();
            let Some(user) = found else {
                return StatusCode::UNAUTHORIZED.into_response();
            };
            if let Ok(mut users) = floor.users.lock() {
                users.insert(hash, user);
            }
            user
        }
    };
    let row = sqlx::query(
        "select job_id, queue, state, attempts_made, max_attempts, progress, result, error_code,
                error, created_at, started_at, finished_at
         from jobs where job_id = $1 and ($2::uuid is null or user_id = $2)",
    )
    .bind(id)
    .bind(user)
    .fetch_optional(&floor.pool)
    .await;
    let Ok(Some(row)) = row else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let at = |column: &str| row.get::<Option<chrono::DateTime<chrono::Utc>>, _>(column);
    Json(serde_json::json!({
        "id": row.get::<Uuid, _>("job_id"),
        "name": row.get::<String, _>("queue"),
        "state": row.get::<String, _>("state"),
        "attempts_made": row.get::<i32, _>("attempts_made"),
        "max_attempts": row.get::<i32, _>("max_attempts"),
        "progress": row.get::<i16, _>("progress"),
        "result": row.get::<Option<serde_json::Value>, _>("result"),
        "error": row.get::<Option<String>, _>("error").map(|message| serde_json::json!({
            "code": row.get::<Option<String>, _>("error_code"),
            "message": message,
        })),
        "created_at": at("created_at"),
        "started_at": at("started_at"),
        "finished_at": at("finished_at"),
    }))
    .into_response()
}
