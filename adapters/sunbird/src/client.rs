//! The adapter itself: a thin reqwest driver of the sans-IO client in `protocol.rs`, which
//! plans the bulk `PATCH .../content/state/update` requests, reads the answers, refreshes the
//! token, retries, bisects and runs the second round. Here: headers, sockets, sleeps, the
//! clock and the progress callback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use headway::{
    Adapter, AdapterError, BatchId, ContentItem, CourseId, EnrolledCourse, Outgoing, PushReport,
    RetryCause, UserId,
};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION};

use crate::error::{Error, Result};
use crate::protocol::{Answer, Machine, Method, Read, Request, Step, TokenUse, UpdatePush};
use crate::wire;

/// The app's gateway key, sent as `Authorization: Bearer <key>`. Its `Debug` hides it.
///
/// ```
/// let key = headway_sunbird::ApiKey::new("secret");
/// assert_eq!(format!("{key:?}"), "ApiKey(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

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

/// A learner's access token, sent as `x-authenticated-user-token`. Its `Debug` hides it.
///
/// ```
/// let token = headway_sunbird::UserToken::new("eyJhbGciOi...");
/// assert_eq!(format!("{token:?}"), "UserToken(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct UserToken(String);

impl UserToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> UserToken {
        UserToken(token.into())
    }
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserToken(..)")
    }
}

/// Where user tokens come from: the app implements it (its login session). After a 401 or 403
/// the adapter asks for a fresh token once and retries.
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// The current token of `user`.
    async fn token(&self, user: &UserId) -> Result<UserToken>;
    /// A new token for `user`, after the server refused the current one.
    async fn refresh(&self, user: &UserId) -> Result<UserToken> {
        self.token(user).await
    }
}

/// A provider that always gives the same token (the CLI's `--user-token`).
///
/// ```
/// use headway_sunbird::{StaticToken, UserToken};
/// let tokens = StaticToken::new(UserToken::new("t1"));
/// # let _ = tokens;
/// ```
#[derive(Clone, Debug)]
pub struct StaticToken(UserToken);

impl StaticToken {
    /// A provider of `token`.
    pub fn new(token: UserToken) -> StaticToken {
        StaticToken(token)
    }
}

#[async_trait]
impl TokenProvider for StaticToken {
    async fn token(&self, _user: &UserId) -> Result<UserToken> {
        Ok(self.0.clone())
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
pub struct PushProgress(Arc<dyn Fn(usize, usize) + Send + Sync>);

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
    base_url: String,
    api_key: Option<ApiKey>,
    pub(crate) chunk: usize,
    pub(crate) timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) when_unreachable: WhenUnreachable,
    pub(crate) attempts: u32,
    pub(crate) retry_base: Duration,
    max_answer_bytes: Option<u64>,
    progress: Option<PushProgress>,
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
            max_answer_bytes: None,
            progress: None,
        }
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
    /// [`Error::AnswerTooLarge`] and its items stay pending; an answer whose `Content-Length`
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
        let Ok(url) = reqwest::Url::parse(&self.base_url) else {
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

    /// `scheme://host:port` of the service, what an unreachable-server message names.
    fn address(&self) -> &str {
        let after_scheme = self.base_url.find("://").map_or(0, |i| i + 3);
        let end = self.base_url[after_scheme..]
            .find('/')
            .map_or(self.base_url.len(), |i| i + after_scheme);
        &self.base_url[..end]
    }
}

/// `{base_url}/api/course/v1/`, the base URL's own path kept (a service behind a path prefix).
fn api_url(base_url: &str) -> Result<url::Url> {
    let invalid = |reason: String| Error::InvalidConfig { reason };
    let mut api =
        url::Url::parse(base_url).map_err(|e| invalid(format!("base URL {base_url:?}: {e}")))?;
    api.set_query(None);
    api.set_fragment(None);
    api.path_segments_mut()
        .map_err(|()| invalid(format!("base URL {base_url:?} cannot have a path")))?
        .pop_if_empty()
        .extend(["api", "course", "v1", ""]);
    Ok(api)
}

/// headway's adapter for Sunbird-Lern's course service.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use headway::{Store, SyncOptions, UserId};
/// use headway_sunbird::{StaticToken, SunbirdAdapter, SunbirdConfig, UserToken};
/// let store = Store::open("progress.db")?;
/// let tokens = Arc::new(StaticToken::new(UserToken::new("user-token")));
/// let adapter = SunbirdAdapter::new(SunbirdConfig::new("https://example.org"), tokens)?;
/// let report = store.sync(&UserId::new("learner-1")?, &adapter, &SyncOptions::new()).await?;
/// println!("{} acknowledged", report.acknowledged);
/// # Ok(()) }
/// ```
pub struct SunbirdAdapter {
    http: reqwest::Client,
    config: SunbirdConfig,
    /// `{base URL}/api/course/v1/`: every request's path is joined to it.
    api: url::Url,
    tokens: Arc<dyn TokenProvider>,
    /// The base URL is plain http to another host (decided once, not per request).
    clear_text: bool,
    /// Set once the warning about a token sent in the clear was logged.
    warned_clear_text: AtomicBool,
}

impl std::fmt::Debug for SunbirdAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SunbirdAdapter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SunbirdAdapter {
    /// An adapter for `config`, asking `tokens` for user tokens.
    pub fn new(config: SunbirdConfig, tokens: Arc<dyn TokenProvider>) -> Result<SunbirdAdapter> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(Error::InvalidConfig {
                reason: format!("base URL {:?} is not http(s)", config.base_url),
            });
        }
        let api = api_url(&config.base_url)?;
        // A redirect is never followed: reqwest would carry `x-authenticated-user-token` (a
        // custom header) to whatever host the `Location` names, and an https base URL never
        // falls back to http (issue 17).
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(config.base_url.starts_with("https://"))
            .build()
            .map_err(|e| Error::Client {
                reason: e.to_string(),
            })?;
        Ok(SunbirdAdapter {
            http,
            api,
            tokens,
            clear_text: config.sends_credentials_in_the_clear(),
            warned_clear_text: AtomicBool::new(false),
            config,
        })
    }

    /// Where a redirect answer pointed: `host:port` of its `Location` (resolved against the
    /// request's URL), never its path or query.
    fn redirect_target(response: &reqwest::Response) -> String {
        response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| response.url().join(location).ok())
            .and_then(|url| {
                let host = url.host_str()?.to_string();
                Some(match url.port_or_known_default() {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                })
            })
            .unwrap_or_else(|| "an unnamed location".to_string())
    }

    /// Reads the body of `response`, at most [`SunbirdConfig::answer_cap`] bytes: a
    /// `Content-Length` over the cap is refused before reading, and a body that grows past it
    /// is dropped at the cap (the connection closes).
    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>> {
        let limit = self.config.answer_cap();
        let too_large = Error::AnswerTooLarge { limit };
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            if (body.len() as u64).saturating_add(chunk.len() as u64) > limit {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// What kind of transport failure `e` was, naming the service's address for a failed
    /// connection; never the URL's path, query or headers.
    fn transport_error(&self, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            return Error::TimedOut;
        }
        if e.is_connect() {
            return Error::CannotConnect {
                address: self.config.address().to_string(),
            };
        }
        let detail = if e.is_body() || e.is_decode() {
            "the connection closed while reading the answer"
        } else if e.is_request() {
            "the request failed"
        } else {
            "transport error"
        };
        Error::Transport {
            detail: detail.to_string(),
        }
    }

    async fn headers(&self, user: &UserId, token: TokenUse) -> Result<HeaderMap> {
        let token = match token {
            TokenUse::Current => self.tokens.token(user).await?,
            TokenUse::Refreshed => self.tokens.refresh(user).await?,
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let invalid = |what: &str| Error::InvalidHeader {
            what: what.to_string(),
        };
        if !token.0.is_empty() {
            if self.clear_text && !self.warned_clear_text.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    server = self.config.address(),
                    "the user token is sent over plain http to a host other than this device"
                );
            }
            let mut user_token =
                HeaderValue::from_str(&token.0).map_err(|_| invalid("user token"))?;
            user_token.set_sensitive(true);
            headers.insert("x-authenticated-user-token", user_token);
        }
        if let Some(key) = &self.config.api_key {
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", key.0))
                .map_err(|_| invalid("API key"))?;
            bearer.set_sensitive(true);
            headers.insert(AUTHORIZATION, bearer);
        }
        Ok(headers)
    }

    /// Sends one request the machine asked for; no retry here.
    async fn send(&self, user: &UserId, request: Request) -> Answer {
        let headers = match self.headers(user, request.token).await {
            Ok(headers) => headers,
            Err(e) => return Answer::NotSent(e),
        };
        let url = match self.api.join(&request.path) {
            Ok(url) => url,
            Err(e) => {
                return Answer::NotSent(Error::InvalidConfig {
                    reason: format!("request path {:?}: {e}", request.path),
                })
            }
        };
        let builder = match request.method {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
            Method::Patch => self.http.patch(url),
        }
        .headers(headers)
        .timeout(request.timeout);
        let builder = match request.body {
            Some(body) => builder.body(body),
            None => builder,
        };
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return Answer::Failed(self.transport_error(&e)),
        };
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            // Not followed, and its body is not read (issue 17).
            return Answer::Failed(Error::Redirected {
                to: Self::redirect_target(&response),
            });
        }
        match self.read_capped(response).await {
            Ok(body) => Answer::Answered { status, body },
            // The server may have applied the update and then dropped the connection: the
            // items stay pending, and resending them is harmless (the server's merge is a max).
            Err(e) => Answer::Failed(e),
        }
    }

    /// Runs `machine` to its end over HTTP: sends what it asks, sleeps its back-offs, and
    /// reports its progress.
    async fn drive<M: Machine + Send>(&self, user: &UserId, mut machine: M) -> M::Output {
        loop {
            let step = machine.poll(Instant::now());
            if let (Some(progress), Some((done, total))) =
                (&self.config.progress, machine.take_progress())
            {
                (progress.0)(done, total);
            }
            match step {
                Step::Send(request) => {
                    let answer = self.send(user, request).await;
                    machine.answer(Instant::now(), answer);
                }
                Step::Wait(pause) => tokio::time::sleep(pause).await,
                Step::Done(output) => return output,
            }
        }
    }
}

#[async_trait]
impl Adapter for SunbirdAdapter {
    async fn push(&self, user: &UserId, items: &[Outgoing]) -> PushReport {
        let push = UpdatePush::new(&self.config, user, items, Instant::now());
        self.drive(user, push).await
    }

    async fn read_states(
        &self,
        user: &UserId,
        course: &CourseId,
        batch: &BatchId,
    ) -> std::result::Result<Vec<ContentItem>, AdapterError> {
        let read = Read::states(&self.config, user, course, batch, Instant::now());
        let answer = self.drive(user, read).await?;
        // A row naming anyone else, even as `42` or `null`: the token belongs to someone else
        // (issue 17). This one check of the raw rows is the adapter's only identity check.
        if let Some(answered) = wire::other_learner_in_read(user, &answer) {
            return Err(AdapterError::WrongLearner {
                asked: user.to_string(),
                answered,
            });
        }
        wire::parse_read(user, &answer).map_err(|detail| AdapterError::Unavailable {
            cause: RetryCause::Unparsable { detail },
        })
    }

    async fn enrolled_courses(
        &self,
        user: &UserId,
    ) -> std::result::Result<Vec<EnrolledCourse>, AdapterError> {
        let read = Read::enrolled_courses(&self.config, user, Instant::now());
        let answer = self.drive(user, read).await?;
        // An entry naming anyone else, even as `42` or `null` (issue 17).
        if let Some(answered) = wire::other_learner_in_list(user, &answer) {
            return Err(AdapterError::WrongLearner {
                asked: user.to_string(),
                answered,
            });
        }
        wire::parse_enrollment_list(&answer)
            .map(crate::enrollment::for_the_core)
            .map_err(|detail| AdapterError::Unavailable {
                cause: RetryCause::Unparsable { detail },
            })
    }
}
