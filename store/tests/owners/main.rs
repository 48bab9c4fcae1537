//! Each table's owner module, on its own, against a real Postgres: the
//! transitions it names, the ones it refuses, and what account deletion
//! finds through it.

mod devices;
mod mail_budgets;
mod photos;
mod records;
mod resets;
mod stripe_events;
mod subscriptions;
mod tokens;
mod users;
mod verifications;

use sqlx::PgPool;
use store::users::NewAccount;
use uuid::Uuid;

/// A new user with `email`; returns its id.
async fn user(pool: &PgPool, email: &str) -> Uuid {
    let id = Uuid::now_v7();
    let mut conn = pool.acquire().await.expect("a connection");
    store::users::create(
        &mut conn,
        NewAccount {
            id,
            email,
            name: "Owner",
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        },
    )
    .await
    .expect("the user is created");
    id
}

/// Rows of `table` (a literal) matching `user_id`.
async fn rows_of(pool: &PgPool, table: &str, user_id: Uuid) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from {table} where user_id = $1"
    )))
    .bind(user_id)
    .fetch_one(pool)
    .await
    .expect("counted")
}
