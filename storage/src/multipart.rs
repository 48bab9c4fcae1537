//! Aborting abandoned S3 multipart uploads: `ListMultipartUploads` and
//! `AbortMultipartUpload`, which object_store does not offer, signed with
//! its SigV4 signer and sent with our client.
//!
//! A crash mid-copy leaves an upload open, and S3 bills its parts until it
//! is aborted. Only uploads under our own key prefix are ever touched, even
//! if the listing names others.

use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use serde::Deserialize;

use super::facade::{Backend, Storage};

/// Signed S3 requests object_store does not make for us.
#[derive(Debug)]
pub(super) struct BucketApi {
    /// The bucket's URL, without a trailing slash.
    pub(super) url: String,
    /// Its region, for the signature.
    pub(super) region: String,
    /// Our HTTP client.
    pub(super) client: reqwest::Client,
    /// object_store's credentials (keys, instance role, web identity).
    pub(super) credentials: object_store::aws::AwsCredentialProvider,
}

impl BucketApi {
    /// Sends a body-less request signed with SigV4 (object_store's signer)
    /// and returns the answer's body; a non-2xx answer is an error.
    async fn send(&self, method: http::Method, url: &str) -> anyhow::Result<String> {
        let credential = self.credentials.get_credential().await?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .body(object_store::client::HttpRequestBody::empty())?;
        object_store::aws::AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)?;
        let (parts, _) = request.into_parts();
        let response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        anyhow::ensure!(status.is_success(), "S3 answered {status}: {body}");
        Ok(body)
    }
}

/// Listing pages read per call: with S3's 1,000 uploads a page, a backlog
/// larger than this is worked off by the next runs.
const MAX_PAGES: usize = 10;

impl Storage {
    /// Aborts the multipart uploads under our prefix that were started
    /// before `age` ago and never completed; returns how many. Nothing to
    /// do for a local folder. Follows the listing's pages (up to
    /// [`MAX_PAGES`] per call).
    pub async fn abort_stale_multipart_uploads(&self, age: Duration) -> anyhow::Result<usize> {
        let Backend::S3 { bucket, .. } = &self.backend else {
            return Ok(0);
        };
        let cutoff = SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut aborted = 0;
        let mut marker: Option<(String, String)> = None;
        for _ in 0..MAX_PAGES {
            let mut url = format!("{}/?uploads&prefix={}", bucket.url, encode(&self.prefix));
            if let Some((key, upload_id)) = &marker {
                url.push_str(&format!(
                    "&key-marker={}&upload-id-marker={}",
                    encode(key),
                    encode(upload_id)
                ));
            }
            let body = bucket
                .send(http::Method::GET, &url)
                .await
                .context("cannot list the open multipart uploads")?;
            let page = Listing::parse(&body)?;
            for upload in page.uploads {
                if !upload.key.starts_with(&self.prefix) {
                    tracing::warn!(
                        key = upload.key,
                        "S3 listed an upload outside our prefix; left alone"
                    );
                    continue;
                }
                if upload.initiated()? >= cutoff {
                    continue;
                }
                let path: Vec<String> = upload.key.split('/').map(encode).collect();
                let url = format!(
                    "{}/{}?uploadId={}",
                    bucket.url,
                    path.join("/"),
                    encode(&upload.upload_id)
                );
                bucket
                    .send(http::Method::DELETE, &url)
                    .await
                    .with_context(|| format!("cannot abort the upload of {}", upload.key))?;
                aborted += 1;
            }
            marker = match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(key), Some(upload_id)) => Some((key, upload_id)),
                _ => break,
            };
        }
        Ok(aborted)
    }
}

/// One page of a `ListMultipartUploadsResult`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listing {
    #[serde(default, rename = "Upload")]
    uploads: Vec<OpenUpload>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

/// An upload started and not completed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OpenUpload {
    key: String,
    upload_id: String,
    initiated: String,
}

impl Listing {
    fn parse(xml: &str) -> anyhow::Result<Self> {
        quick_xml::de::from_str(xml).context("S3's multipart upload listing is not what S3 sends")
    }
}

impl OpenUpload {
    fn initiated(&self) -> anyhow::Result<SystemTime> {
        let time = chrono::DateTime::parse_from_rfc3339(&self.initiated)
            .with_context(|| format!("S3 listed an upload started at {:?}", self.initiated))?;
        Ok(time.into())
    }
}

/// Percent-encodes everything but S3's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_page_is_read_with_its_entities_and_continuation() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Bucket>b</Bucket><KeyMarker></KeyMarker><IsTruncated>true</IsTruncated>
<NextKeyMarker>app/x</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>
<Upload><Key>app/photos/a&amp;b/original</Key><UploadId>id-1</UploadId>
<Initiator><ID>x</ID></Initiator><Initiated>2026-11-20T10:00:00.000Z</Initiated></Upload>
<Upload><Key>app/x</Key><UploadId>id-2</UploadId><Initiated>not a date</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let page = Listing::parse(xml).expect("parsed");
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[0].key, "app/photos/a&b/original");
        assert_eq!(page.uploads[0].upload_id, "id-1");
        assert!(page.uploads[0].initiated().is_ok());
        assert!(
            page.uploads[1].initiated().is_err(),
            "a bad date is an error, not a guess"
        );
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("app/x"));
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("id-2"));
    }

    #[test]
    fn an_empty_listing_has_no_uploads_and_no_next_page() {
        let page = Listing::parse(
            "<ListMultipartUploadsResult><Bucket>b</Bucket></ListMultipartUploadsResult>",
        )
        .expect("parsed");
        assert!(page.uploads.is_empty());
        assert!(!page.is_truncated);
    }

    #[test]
    fn keys_are_percent_encoded_but_for_unreserved_characters() {
        assert_eq!(encode("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(encode("A-z_0.~"), "A-z_0.~");
    }
}
