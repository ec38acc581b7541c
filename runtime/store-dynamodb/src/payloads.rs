//! Large payloads in S3 (issue 17, item 4).
//!
//! A journal entry or inbox message whose encoded body is over the store's
//! threshold ([`DEFAULT_PAYLOAD_THRESHOLD`], a setting) is written to the
//! payload bucket first, under `payloads/<execution id>/<sha256 of the
//! body>`; the item then holds a reference instead of the body:
//! `body_ref` (`s3://<bucket>/<key>`), `body_size` and `body_sha256`. A
//! crash between the two leaves at most an object no item refers to (the
//! bucket's lifecycle expires it), never an item whose object is missing.
//! The key is content-addressed within the execution: a retried write puts
//! the same bytes under the same key.
//!
//! A read fetches the object named by the reference (its own bucket, so a
//! store without a bucket configured still reads what another wrote) and
//! checks its size and SHA-256 against the reference: a mismatch or a
//! missing object is [`StoreError::Corrupt`], never a silently different
//! payload. The engine never sees references: entries come back whole.

use crate::codec::{Item, get_n, get_s, n, s};
use aws_sdk_s3::primitives::ByteStream;
use cairn_core::ExecutionId;
use cairn_core::store::StoreError;
use sha2::{Digest, Sha256};

/// Bodies over this many bytes go to S3 when a bucket is configured
/// (`CAIRN_PAYLOAD_THRESHOLD_BYTES`, `--payload-threshold`). 64 KiB: well
/// under the 400 KB item limit, so that a 1 MB query page still holds at
/// least 15 entries and an item's write costs at most 64 write units
/// (about $40 per million such writes, against S3's $5 per million
/// PUTs); smaller bodies stay in the item, one request cheaper.
pub const DEFAULT_PAYLOAD_THRESHOLD: usize = 64 << 10;

/// The largest body the store takes at all, in S3 (32 MiB): the engine
/// holds a journal in memory, and the Lambda host keeps 128 MiB of
/// headroom (infra/CONTRACT.md, "memory"). Larger data goes by reference.
pub const MAX_PAYLOAD_BYTES: usize = 32 << 20;

/// The key prefix of payload objects in the bucket (the IAM policies of
/// both stacks grant `s3:GetObject` and `s3:PutObject` on it only).
pub const PAYLOAD_PREFIX: &str = "payloads/";

/// How long one S3 attempt may take (a 32 MiB body over a slow link).
pub const S3_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The S3 side of a store: the client, and the bucket written to (if any).
#[derive(Clone)]
pub(crate) struct Payloads {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) bucket: Option<String>,
    pub(crate) threshold: usize,
}

/// An item's body: inline, or a reference to an S3 object.
pub(crate) enum Body {
    Inline(String),
    Stored {
        bucket: String,
        key: String,
        size: usize,
        sha256: String,
    },
}

impl Body {
    /// Sets the body's attributes on `item`.
    pub(crate) fn set(self, item: &mut Item) {
        match self {
            Body::Inline(body) => {
                item.insert("body".into(), s(body));
            }
            Body::Stored {
                bucket,
                key,
                size,
                sha256,
            } => {
                item.insert("body_ref".into(), s(format!("s3://{bucket}/{key}")));
                item.insert("body_size".into(), n(size as u64));
                item.insert("body_sha256".into(), s(sha256));
            }
        }
    }
}

/// The hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An S3 client from `sdk` (endpoint, region, credentials; the service's
/// own endpoint variable `AWS_ENDPOINT_URL_S3` applies), with the store's
/// retry policy. A custom endpoint (an emulator) is addressed path-style.
pub(crate) fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let mut config = aws_sdk_s3::config::Builder::from(sdk);
    let chosen = sdk.get_origin("retry_config").is_client_config()
        || std::env::var_os("AWS_MAX_ATTEMPTS").is_some()
        || std::env::var_os("AWS_RETRY_MODE").is_some();
    if !chosen {
        config = config.retry_config(crate::retry_config());
    }
    let timeouts = sdk
        .timeout_config()
        .cloned()
        .unwrap_or_else(|| aws_sdk_s3::config::timeout::TimeoutConfig::builder().build());
    if timeouts.operation_attempt_timeout().is_none() {
        config = config.timeout_config(
            timeouts
                .to_builder()
                .operation_attempt_timeout(S3_ATTEMPT_TIMEOUT)
                .build(),
        );
    }
    // An endpoint of its own (an emulator), in code or from the
    // environment: bucket names do not resolve as its subdomains.
    let custom = sdk.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    if custom {
        config = config.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

impl Payloads {
    /// The largest body the store accepts: [`MAX_PAYLOAD_BYTES`] with a
    /// bucket, the item limit without.
    pub(crate) fn limit(&self) -> usize {
        if self.bucket.is_some() {
            MAX_PAYLOAD_BYTES
        } else {
            crate::MAX_ITEM_BYTES
        }
    }

    /// What a caller over [`Payloads::limit`] should do.
    pub(crate) fn advice(&self) -> String {
        if self.bucket.is_some() {
            format!(
                "that is the hard cap for payloads in the S3 payload bucket ({MAX_PAYLOAD_BYTES} bytes): pass larger data by reference (e.g. an object-store key) instead"
            )
        } else {
            format!(
                "DynamoDB items hold at most {} bytes and no payload bucket is configured: set CAIRN_PAYLOAD_BUCKET (or --payload-bucket) to keep payloads up to {MAX_PAYLOAD_BYTES} bytes in S3, or pass large data by reference (e.g. an object-store key)",
                crate::MAX_ITEM_BYTES
            )
        }
    }

    /// The body of an item: inline up to the threshold (or the item limit
    /// without a bucket), else written to S3 first. Over the limit:
    /// [`StoreError::TooLarge`], before any request.
    pub(crate) async fn body(
        &self,
        id: &ExecutionId,
        what: impl FnOnce() -> String,
        body: String,
    ) -> Result<Body, StoreError> {
        let size = body.len();
        if size > self.limit() {
            return Err(StoreError::TooLarge {
                id: id.clone(),
                what: what(),
                size,
                limit: self.limit(),
                advice: self.advice(),
            });
        }
        let Some(bucket) = &self.bucket else {
            return Ok(Body::Inline(body));
        };
        if size <= self.threshold {
            return Ok(Body::Inline(body));
        }
        let sha256 = sha256_hex(body.as_bytes());
        let key = format!("{PAYLOAD_PREFIX}{id}/{sha256}");
        self.client
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .map_err(|e| s3_error(bucket, &key, &what(), e))?;
        Ok(Body::Stored {
            bucket: bucket.clone(),
            key,
            size,
            sha256,
        })
    }

    /// Puts the body an item refers to back into it as `body` (nothing to
    /// do for an inline body), checking the object's size and SHA-256.
    pub(crate) async fn resolve(
        &self,
        id: &ExecutionId,
        what: impl Fn() -> String,
        item: &mut Item,
    ) -> Result<(), StoreError> {
        if item.contains_key("body") {
            return Ok(());
        }
        let Some(reference) = get_s(item, "body_ref") else {
            return Ok(()); // no body at all: the decoder says so
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            id: id.clone(),
            reason: format!("{}: {reason}", what()),
        };
        let (bucket, key) = reference
            .strip_prefix("s3://")
            .and_then(|r| r.split_once('/'))
            .ok_or_else(|| {
                corrupt(format!(
                    "payload reference {reference:?} is not s3://BUCKET/KEY"
                ))
            })?;
        let size = get_n(item, "body_size")
            .ok_or_else(|| corrupt(format!("payload reference {reference} has no size")))?;
        let sha256 = get_s(item, "body_sha256")
            .ok_or_else(|| corrupt(format!("payload reference {reference} has no sha256")))?;
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                    corrupt(format!(
                        "payload object {reference} is missing (deleted, or expired by the bucket's lifecycle: PayloadRetentionDays / payload_retention_days)"
                    ))
                } else {
                    s3_error(bucket, key, &what(), e)
                }
            })?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "reading payload object {reference} of {} failed: {e}",
                    what()
                ))
            })?
            .into_bytes();
        let got = sha256_hex(&bytes);
        if bytes.len() as u64 != size || got != sha256 {
            return Err(corrupt(format!(
                "payload object {reference} does not match its reference ({} bytes with sha256 {got}; the journal says {size} bytes with sha256 {sha256}): the object was changed or replaced",
                bytes.len()
            )));
        }
        let body = String::from_utf8(bytes.to_vec())
            .map_err(|_| corrupt(format!("payload object {reference} is not UTF-8")))?;
        item.insert("body".into(), s(body));
        Ok(())
    }
}

/// Whether `found`'s body (inline, or by its reference's hash) is `body`.
pub(crate) fn same_body(found: &Item, body: &str) -> bool {
    match get_s(found, "body") {
        Some(b) => b == body,
        None => {
            get_s(found, "body_sha256").is_some_and(|h| h == sha256_hex(body.as_bytes()))
                && get_n(found, "body_size") == Some(body.len() as u64)
        }
    }
}

/// Maps an S3 error, naming the object and what it holds.
fn s3_error<E, R>(
    bucket: &str,
    key: &str,
    what: &str,
    e: aws_sdk_s3::error::SdkError<E, R>,
) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown");
            let message = se.err().message().unwrap_or("");
            match code {
                "NoSuchBucket" => StoreError::Misconfigured(format!(
                    "payload bucket {bucket} does not exist (for {what}): create it (both stacks in infra/ do) or set CAIRN_PAYLOAD_BUCKET to an existing bucket ({message})"
                )),
                "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
                    StoreError::Misconfigured(format!(
                        "access to s3://{bucket}/{key} ({what}) denied: the role needs s3:GetObject and s3:PutObject on {PAYLOAD_PREFIX}* ({code}: {message})"
                    ))
                }
                _ => StoreError::Unavailable(format!(
                    "S3 error on s3://{bucket}/{key} ({what}): {code}: {message}"
                )),
            }
        }
        SdkError::DispatchFailure(_) => {
            let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .unwrap_or_else(|_| "the regional endpoint".into());
            let cause = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default();
            StoreError::Unavailable(format!(
                "cannot reach S3 at {endpoint} (for {what}): {cause}; check the endpoint and network"
            ))
        }
        SdkError::TimeoutError(_) => StoreError::Unavailable(format!(
            "S3 request on s3://{bucket}/{key} ({what}) timed out"
        )),
        _ => StoreError::Unavailable(format!(
            "S3 request on s3://{bucket}/{key} ({what}) failed: {e}"
        )),
    }
}

/// Parses a payload threshold setting (`CAIRN_PAYLOAD_THRESHOLD_BYTES`,
/// `--payload-threshold`): bytes, 1 to [`crate::MAX_ITEM_BYTES`].
pub fn check_payload_threshold(v: &str) -> Result<usize, StoreError> {
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=crate::MAX_ITEM_BYTES).contains(&n) => Ok(n),
        _ => Err(StoreError::Misconfigured(format!(
            "CAIRN_PAYLOAD_THRESHOLD_BYTES (--payload-threshold) is {v:?}: give a number of bytes from 1 to {} (default {DEFAULT_PAYLOAD_THRESHOLD}); bodies over it go to the payload bucket",
            crate::MAX_ITEM_BYTES
        ))),
    }
}
