//! Reaching URLs clients name: remote inputs and callbacks.
//!
//! Unless `jobs.allow_private_networks` is set, the service never connects to loopback,
//! private, link-local (cloud metadata at 169.254.169.254), shared, multicast or
//! unspecified addresses: literal addresses are refused when the URL is checked and at
//! every redirect, and names are resolved by [`GuardedResolver`], which drops such
//! addresses, so a name that points inside (or is re-pointed there later) cannot be used
//! to reach it. Downloads are capped in size (the upload limits), in time
//! (`jobs.remote_timeout`) and in redirects (`jobs.remote_max_redirects`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::JobRecord;
use super::spec::InputKind;
use crate::app::AppState;
use crate::db::DbError;
use crate::error::{ApiError, ErrorCode};
use crate::files::{FileRecord, ingest, sniff};
use crate::storage::Storage;

/// Why a URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum UrlProblem {
    /// Not a URL the service fetches.
    #[error("{0}")]
    Invalid(String),
    /// A literal address the service may not reach.
    #[error(
        "`{0}` is a loopback, private or link-local address, which this service does not reach"
    )]
    Private(IpAddr),
}

/// Whether `ip` is outside the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || a >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 to anything
        }
    }
}

/// Checks `url`: http or https, a host, no credentials, and (unless `allow_private`) not a
/// literal private address.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, UrlProblem> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|error| UrlProblem::Invalid(format!("`{url}` is not a URL: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(UrlProblem::Invalid(format!(
            "only http and https URLs are fetched, not `{}:`",
            parsed.scheme()
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlProblem::Invalid(
            "URLs with a user name or password are not accepted; give credentials another way"
                .into(),
        ));
    }
    let ip = match parsed.host() {
        None => return Err(UrlProblem::Invalid(format!("`{url}` has no host"))),
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = ip
        && !allow_private
        && is_private(ip)
    {
        return Err(UrlProblem::Private(ip));
    }
    Ok(parsed)
}

/// The last path segment of `url`, as a file name, if it is one.
pub fn filename_of(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let last = parsed.path_segments()?.next_back()?;
    let decoded = percent_encoding::percent_decode_str(last)
        .decode_utf8()
        .ok()?
        .into_owned();
    crate::files::valid_filename(&decoded).then_some(decoded)
}

/// Resolves names, dropping the addresses the service may not reach.
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|address| allow_private || !is_private(address.ip()))
                .collect();
            if allowed.is_empty() && !found.is_empty() {
                return Err(format!(
                    "`{host}` resolves to {}, a loopback, private or link-local address, \
                     which this service does not reach",
                    found[0].ip()
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Installs the TLS provider once (one provider for every client in the process: remote
/// inputs, callbacks, storage services).
pub fn tls_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An HTTP client that respects the address rules, with `timeout` per request and at most
/// `redirects` redirects, each checked.
pub fn client(
    state: &AppState,
    timeout: Duration,
    redirects: usize,
) -> Result<reqwest::Client, reqwest::Error> {
    tls_provider();
    let allow_private = state.config().jobs.allow_private_networks;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > redirects {
            return attempt.error(format!("more than {redirects} redirects"));
        }
        match check_url(attempt.url().as_str(), allow_private) {
            Ok(_) => attempt.follow(),
            Err(problem) => attempt.error(problem.to_string()),
        }
    });
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(policy)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .user_agent(concat!("Metamorph/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A transport error, with its causes, in one line.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether the error came from the address guard (it names the refusal).
fn refused_address(message: &str) -> bool {
    message.contains("which this service does not reach")
}

/// Fetches the input `input` of `job` (from its URL, its storage service or its
/// destination) into storage and completes its record.
pub async fn import(state: &AppState, job: &JobRecord, input: &FileRecord) -> Result<(), ApiError> {
    let spec = job
        .spec
        .inputs
        .iter()
        .find(|candidate| candidate.file_id.as_deref() == Some(input.id.as_str()))
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the input is not in its job"))?;
    if spec.kind != InputKind::Remote {
        let target = super::targets::of_input(state, &job.row.org_id, spec).await?;
        let path = spec.path.clone().unwrap_or_default();
        let opened = target
            .open(state.config().jobs.allow_private_networks)
            .await?;
        let (size, body) = opened.read(&path).await?;
        let source = format!("{}:{path}", target.service.as_str());
        return store(state, job, input, Some(size), body, &source).await;
    }
    let config = state.config();
    let url = spec
        .source
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "the remote input has no URL"))?;
    check_url(&url, config.jobs.allow_private_networks)
        .map_err(|problem| ApiError::new(ErrorCode::AddressNotAllowed, problem.to_string()))?;
    let client = client(
        state,
        config.jobs.remote_timeout,
        config.jobs.remote_max_redirects,
    )
    .map_err(ApiError::internal)?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|error| failed(format!("cannot fetch {url}: {}", describe(&error))))?;
    if !response.status().is_success() {
        return Err(failed(format!("{url} answered {}", response.status())));
    }
    let length = response.content_length();
    let body = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(|error| std::io::Error::other(describe(&error))));
    store(state, job, input, length, body, &url).await
}

fn failed(message: String) -> ApiError {
    let code = if refused_address(&message) {
        ErrorCode::AddressNotAllowed
    } else {
        ErrorCode::RemoteFetchFailed
    };
    ApiError::new(code, message)
}

/// Streams an input's bytes into storage, within the upload limit, the job's input limit
/// and the quota left, and marks its record ready.
async fn store<S>(
    state: &AppState,
    job: &JobRecord,
    input: &FileRecord,
    length: Option<u64>,
    body: S,
    source: &str,
) -> Result<(), ApiError>
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>>,
{
    let config = state.config();
    let (org_id, file_id) = (input.org_id.clone(), input.id.clone());
    let files_config = config.files;
    let (quota, used) = state
        .db()
        .run(move |conn| -> Result<(u64, u64), DbError> {
            Ok((
                crate::files::quota(conn, &org_id, &files_config)?,
                crate::files::bytes_used(conn, &org_id, &file_id)?,
            ))
        })
        .await?;
    let cap = files_config
        .max_upload_size
        .min(job.spec.limits.input.max_file_size.unwrap_or(u64::MAX))
        .min(quota.saturating_sub(used));
    if let Some(length) = length
        && length > cap
    {
        return Err(too_large(length, cap));
    }
    let key = Storage::file_key(&input.org_id, &input.id);
    let stored = match ingest::store_stream(state.storage(), &key, body, cap).await {
        Ok(stored) => stored,
        Err(refused) => {
            let _ = state.storage().delete(&key).await;
            return Err(match refused {
                ingest::Refused::TooLong(size) => too_large(size, cap),
                ingest::Refused::Source(error) => failed(format!("{source} broke off: {error}")),
                ingest::Refused::Storage(error) => error.into(),
            });
        }
    };
    let format = sniff::sniff(&stored.head, &input.filename);
    let id = input.id.clone();
    let saved = state
        .db()
        .run(move |conn| {
            ingest::mark_ready(conn, &id, &stored, format.as_deref(), &key).map_err(DbError::from)
        })
        .await;
    if let Err(error) = saved {
        let _ = state
            .storage()
            .delete(&Storage::file_key(&input.org_id, &input.id))
            .await;
        return Err(error.into());
    }
    Ok(())
}

fn too_large(size: u64, cap: u64) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "the input is {size} bytes or more; it may be at most {cap} bytes \
             (the upload limit, the job's limits.input.max_file_size and the storage left)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_are_private() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(is_private(address.parse().unwrap()), "{address}");
        }
        for address in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(address.parse().unwrap()), "{address}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(matches!(
            check_url("http://127.0.0.1:8080/x", false),
            Err(UrlProblem::Private(_))
        ));
        assert!(matches!(
            check_url("http://169.254.169.254/latest/meta-data", false),
            Err(UrlProblem::Private(_))
        ));
        assert!(matches!(
            check_url("http://[::1]/", false),
            Err(UrlProblem::Private(_))
        ));
        assert!(check_url("http://127.0.0.1:8080/x", true).is_ok());
        assert!(check_url("https://example.com/a.png", false).is_ok());
        assert!(matches!(
            check_url("file:///etc/passwd", true),
            Err(UrlProblem::Invalid(_))
        ));
        assert!(matches!(
            check_url("http://user:pw@example.com/", true),
            Err(UrlProblem::Invalid(_))
        ));
        assert_eq!(
            filename_of("https://example.com/a/photo%20one.png?x=1").as_deref(),
            Some("photo one.png")
        );
        assert_eq!(filename_of("https://example.com/"), None);
    }
}
