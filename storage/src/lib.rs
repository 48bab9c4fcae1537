//! File storage for uploads and what the jobs produce (photos, onboarding
//! PDFs), through `object_store`, so a local folder in development and S3
//! (or any S3-compatible store) in production are the same code.
//!
//! Keys are deterministic ([`keys`]): a retried job overwrites its own
//! output instead of leaving a second copy, and the api can find a file from
//! the row that names it.
//!
//! - [`Storage`] (`facade.rs`): the one handle routes and jobs use: put,
//!   get, read, list, delete, signed URLs.
//! - `spool.rs`: uploads received to a spool file before they are stored.
//! - `s3.rs`: opening an S3 bucket on our HTTP client.
//! - `multipart.rs`: aborting abandoned S3 multipart uploads, with signed
//!   requests object_store does not make.
//! - [`keys`]: the deterministic keys.

mod facade;
pub mod keys;
mod multipart;
mod s3;
mod spool;

pub use facade::{ListedFile, Storage, StorageError, StoredFile};
pub use spool::Upload;
