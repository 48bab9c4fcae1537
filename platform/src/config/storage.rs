//! Where uploads and job output (photos, PDFs) are stored.

use std::path::PathBuf;

use secrecy::SecretString;

use super::variables::{Folder, Nested, Optional, Parsed, Secret, Text, variables};

/// Where uploads and job output (photos, PDFs) are stored.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// A folder path, a `file://` URL or `s3://bucket/prefix` (`STORAGE_URL`).
    pub url: String,
    /// S3 access when `url` is `s3://…`.
    pub s3: S3Settings,
    /// Where uploads are spooled while they arrive (`UPLOAD_SPOOL_DIR`,
    /// default: the system's temporary folder).
    pub spool_dir: PathBuf,
}

variables! {
    StorageSettings {
        url: Text("STORAGE_URL", ".dev/storage"),
        s3: Nested,
        spool_dir: Folder("UPLOAD_SPOOL_DIR", std::env::temp_dir()),
    }
}

/// How to reach S3 or an S3-compatible store (the standard `AWS_*` names);
/// unset fields fall back to the AWS SDK's usual sources (instance role,
/// web identity, …).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Endpoint of an S3-compatible store, e.g. MinIO (`AWS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Bucket region (`AWS_REGION`).
    pub region: Option<String>,
    /// Access key (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// Secret key (`AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<SecretString>,
    /// Allow a plain-HTTP endpoint, for local stores (`AWS_ALLOW_HTTP`).
    pub allow_http: bool,
}

variables! {
    S3Settings {
        endpoint: Optional("AWS_ENDPOINT"),
        region: Optional("AWS_REGION"),
        access_key_id: Optional("AWS_ACCESS_KEY_ID"),
        secret_access_key: Secret("AWS_SECRET_ACCESS_KEY"),
        allow_http: Parsed("AWS_ALLOW_HTTP", false),
    }
}
