//! Rebuilds `store` when a migration is added or changed: `sqlx::migrate!`
//! embeds them at compile time, and Cargo does not know it reads that folder.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
