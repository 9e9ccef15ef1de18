//! How to reach the course service and how hard to try: the bottom layer, which `protocol`
//! and the `client` both read.

use std::sync::Arc;
use std::time::Duration;

/// The app's gateway key, sent as `Authorization: Bearer <key>`. Its `Debug` hides it.
///
/// ```
/// let key = headway_sunbird::ApiKey::new("secret");
/// assert_eq!(format!("{key:?}"), "ApiKey(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(pub(crate) String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

/// What a push or read does when the course service cannot be reached.
///
/// ```
/// use headway_sunbird::{SunbirdConfig, WhenUnreachable};
/// let config = SunbirdConfig::new("http://127.0.0.1:9000").when_unreachable(WhenUnreachable::StopAtOnce);
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenUnreachable {
    /// A request that cannot connect (refused, no route, DNS failure) or times out ends the
    /// call at once: no retry, no further chunk; every item not yet answered stays pending.
    /// Offline, a sync returns in milliseconds. The default.
    #[default]
    StopAtOnce,
    /// Every chunk is tried, each up to `attempts` times with back-off (the behaviour before
    /// fail-fast; kept for comparison in the benchmark).
    TryEveryRequest,
}

/// Called after each answered (or abandoned) update request with the items done so far and
/// the items of the whole push: what the CLI's progress bar follows.
#[derive(Clone)]
pub struct PushProgress(pub(crate) Arc<dyn Fn(usize, usize) + Send + Sync>);

impl PushProgress {
    /// Wraps a callback `(done, total)`.
    ///
    /// ```
    /// let progress = headway_sunbird::PushProgress::new(|done, total| eprintln!("{done}/{total}"));
    /// # let _ = progress;
    /// ```
    pub fn new(callback: impl Fn(usize, usize) + Send + Sync + 'static) -> PushProgress {
        PushProgress(Arc::new(callback))
    }
}

impl std::fmt::Debug for PushProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushProgress(..)")
    }
}

/// Where the course service is and how to talk to it.
///
/// ```
/// use std::time::Duration;
/// use headway_sunbird::{ApiKey, SunbirdConfig, WhenUnreachable};
/// let config = SunbirdConfig::new("http://127.0.0.1:9000")
///     .api_key(ApiKey::new("k"))
///     .chunk(100)                         // items per request, the default
///     .timeout(Duration::from_secs(10))   // per request, the default
///     .deadline(Duration::from_secs(30))  // per push or read, the default
///     .when_unreachable(WhenUnreachable::StopAtOnce) // the default
///     .attempts(3)                        // tries per request on 5xx
///     .max_answer_bytes(8 << 20);         // default: 64 KiB per chunk item, at least 4 MiB
/// assert_eq!(config.answer_cap(), 8 << 20);
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct SunbirdConfig {
    pub(crate) base_url: String,
    pub(crate) api_key: Option<ApiKey>,
    pub(crate) chunk: usize,
    pub(crate) timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) when_unreachable: WhenUnreachable,
    pub(crate) attempts: u32,
    pub(crate) retry_base: Duration,
    pub(crate) token_timeout: Duration,
    max_answer_bytes: Option<u64>,
    pub(crate) progress: Option<PushProgress>,
}

/// The default answer cap per item of a chunk: an update answer needs well under 100 bytes
/// per item (`"<contentId>": "SUCCESS"`), and a read or enrolment-list answer a few hundred
/// bytes per content row or listed leaf; 64 KiB per item leaves a wide margin.
const ANSWER_BYTES_PER_ITEM: u64 = 64 << 10;

/// The smallest default answer cap: room for the content rows of a course of thousands of
/// contents, or an enrolment list of dozens of courses with their leaf lists.
const MIN_ANSWER_BYTES: u64 = 4 << 20;

impl SunbirdConfig {
    /// A config for the service at `base_url` (scheme, host and port; `/api/course/...` is
    /// added).
    pub fn new(base_url: impl Into<String>) -> SunbirdConfig {
        SunbirdConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: None,
            chunk: 100,
            timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            when_unreachable: WhenUnreachable::StopAtOnce,
            attempts: 3,
            retry_base: Duration::from_millis(200),
            token_timeout: Duration::from_secs(30),
            max_answer_bytes: None,
            progress: None,
        }
    }

    /// How long the token provider may take to give a token. Default 30 s. A provider that
    /// does not answer in time (an app's login dialog left open, a hung call) fails the
    /// request like no token: everything stays pending, and the learner's next sync, which
    /// waits for this one (syncs of a learner take turns), is not held up longer.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = headway_sunbird::SunbirdConfig::new("http://127.0.0.1:9000")
    ///     .token_timeout(Duration::from_secs(5));
    /// # let _ = config;
    /// ```
    pub fn token_timeout(mut self, timeout: Duration) -> SunbirdConfig {
        self.token_timeout = timeout;
        self
    }

    /// The gateway key. Default none (no `Authorization` header).
    pub fn api_key(mut self, key: ApiKey) -> SunbirdConfig {
        self.api_key = Some(key);
        self
    }

    /// At most this many items per update request. Default 100; at least 1.
    pub fn chunk(mut self, items: usize) -> SunbirdConfig {
        self.chunk = items.max(1);
        self
    }

    /// The timeout of one request, connecting included. Default 10 s.
    pub fn timeout(mut self, timeout: Duration) -> SunbirdConfig {
        self.timeout = timeout;
        self
    }

    /// One deadline for a whole push (every chunk, retry and back-off) or read: once it
    /// passes, no request starts and the items not yet answered stay pending. Default 30 s.
    pub fn deadline(mut self, deadline: Duration) -> SunbirdConfig {
        self.deadline = deadline;
        self
    }

    /// What happens when a request cannot connect or times out. Default
    /// [`WhenUnreachable::StopAtOnce`].
    pub fn when_unreachable(mut self, policy: WhenUnreachable) -> SunbirdConfig {
        self.when_unreachable = policy;
        self
    }

    /// How many times one request is tried on a 5xx or 429 (and, with
    /// [`WhenUnreachable::TryEveryRequest`], on a network error or timeout) before its items
    /// are reported as retrying. Default 3; at least 1.
    pub fn attempts(mut self, attempts: u32) -> SunbirdConfig {
        self.attempts = attempts.max(1);
        self
    }

    /// The first back-off between attempts (doubling, with jitter). Default 200 ms.
    pub fn retry_base(mut self, delay: Duration) -> SunbirdConfig {
        self.retry_base = delay;
        self
    }

    /// The most bytes of one answer's body that are read. Past it the request fails with
    /// [`Error::AnswerTooLarge`](crate::Error::AnswerTooLarge) and its items stay pending; an answer whose `Content-Length`
    /// is over it is refused before its body is read. Default: 64 KiB per item of a chunk
    /// (an update answer needs under 100 bytes per item), at least 4 MiB (a read of a course
    /// batch with thousands of contents, or an enrolment list with its leaf lists); 6.25 MiB
    /// with the default chunk of 100. At least 1 KiB.
    pub fn max_answer_bytes(mut self, bytes: u64) -> SunbirdConfig {
        self.max_answer_bytes = Some(bytes.max(1 << 10));
        self
    }

    /// The cap on one answer's body in use: [`SunbirdConfig::max_answer_bytes`], or the
    /// default sized from the chunk.
    ///
    /// ```
    /// use headway_sunbird::SunbirdConfig;
    /// assert_eq!(SunbirdConfig::new("http://127.0.0.1:9").answer_cap(), 100 * 64 * 1024);
    /// assert_eq!(SunbirdConfig::new("http://127.0.0.1:9").chunk(10).answer_cap(), 4 << 20);
    /// ```
    pub fn answer_cap(&self) -> u64 {
        self.max_answer_bytes.unwrap_or_else(|| {
            (self.chunk as u64)
                .saturating_mul(ANSWER_BYTES_PER_ITEM)
                .max(MIN_ANSWER_BYTES)
        })
    }

    /// True when the base URL is plain `http://` to a host other than this device (not
    /// `localhost`, `127.0.0.0/8` or `::1`): a user token sent there travels unencrypted.
    ///
    /// ```
    /// use headway_sunbird::SunbirdConfig;
    /// assert!(SunbirdConfig::new("http://example.org").sends_credentials_in_the_clear());
    /// assert!(!SunbirdConfig::new("http://127.0.0.1:9000").sends_credentials_in_the_clear());
    /// assert!(!SunbirdConfig::new("https://example.org").sends_credentials_in_the_clear());
    /// ```
    pub fn sends_credentials_in_the_clear(&self) -> bool {
        let Ok(url) = url::Url::parse(&self.base_url) else {
            return false;
        };
        let host = url.host_str().unwrap_or("");
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        url.scheme() == "http" && !loopback
    }

    /// Called after each update request with `(items done, items in the push)`. Default none.
    pub fn on_progress(mut self, progress: PushProgress) -> SunbirdConfig {
        self.progress = Some(progress);
        self
    }

    /// `scheme://host:port` of the service, what an unreachable-server message names: never
    /// a user name, password, path or query the base URL may carry (a token pasted into
    /// `--server` stays out of error texts and logs).
    pub(crate) fn address(&self) -> String {
        match url::Url::parse(&self.base_url) {
            Ok(url) if url.has_host() => url.origin().ascii_serialization(),
            _ => "the configured server".to_string(),
        }
    }
}

#[cfg(test)]
mod address_tests {
    use super::SunbirdConfig;

    #[test]
    fn the_address_in_messages_names_only_scheme_host_and_port() {
        let named = |base: &str| SunbirdConfig::new(base).address();
        assert_eq!(named("http://127.0.0.1:9000/lms"), "http://127.0.0.1:9000");
        assert_eq!(
            named("https://user:s3cret@example.org?token=abc"),
            "https://example.org"
        );
        assert_eq!(
            named("https://example.org:8443/api?token=abc"),
            "https://example.org:8443"
        );
        assert_eq!(named("not a url"), "the configured server");
    }
}
