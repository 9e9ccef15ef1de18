//! The adapter itself: bulk `PATCH .../content/state/update` in chunks, with token refresh,
//! bounded retries, and bisection of a chunk the server refuses with 400.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use headway::{
    Adapter, AdapterError, Backoff, ContentItem, EnrolledCourse, ItemOutcome, Outgoing, PushReport,
    RetryCause,
};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

use crate::error::{Error, Result};
use crate::wire::{self, UpdateAnswer};

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
    async fn token(&self, user: &str) -> Result<UserToken>;
    /// A new token for `user`, after the server refused the current one.
    async fn refresh(&self, user: &str) -> Result<UserToken> {
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
    async fn token(&self, _user: &str) -> Result<UserToken> {
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
///     .attempts(3);                       // tries per request on 5xx
/// # let _ = config;
/// ```
#[derive(Clone, Debug)]
pub struct SunbirdConfig {
    base_url: String,
    api_key: Option<ApiKey>,
    chunk: usize,
    timeout: Duration,
    deadline: Duration,
    when_unreachable: WhenUnreachable,
    attempts: u32,
    retry_base: Duration,
    progress: Option<PushProgress>,
}

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

/// headway's adapter for Sunbird-Lern's course service.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use headway::{Store, SyncOptions};
/// use headway_sunbird::{StaticToken, SunbirdAdapter, SunbirdConfig, UserToken};
/// let store = Store::open("progress.db")?;
/// let tokens = Arc::new(StaticToken::new(UserToken::new("user-token")));
/// let adapter = SunbirdAdapter::new(SunbirdConfig::new("https://example.org"), tokens)?;
/// let report = store.sync("learner-1", &adapter, &SyncOptions::new()).await?;
/// println!("{} acknowledged", report.acknowledged);
/// # Ok(()) }
/// ```
pub struct SunbirdAdapter {
    http: reqwest::Client,
    config: SunbirdConfig,
    tokens: Arc<dyn TokenProvider>,
}

impl std::fmt::Debug for SunbirdAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SunbirdAdapter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Counters and bounds of one push or read.
struct Traffic {
    requests: usize,
    bytes_sent: u64,
    bytes_received: u64,
    /// No request starts after this.
    deadline: Instant,
    /// Set when the service proved unreachable and the call stops at once.
    halted: Option<RetryCause>,
}

impl Traffic {
    fn new(config: &SunbirdConfig) -> Traffic {
        Traffic {
            requests: 0,
            bytes_sent: 0,
            bytes_received: 0,
            deadline: Instant::now() + config.deadline,
            halted: None,
        }
    }

    /// Time left before the deadline.
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Why no further request may start, if none may.
    fn stopped(&self) -> Option<RetryCause> {
        if let Some(cause) = &self.halted {
            return Some(cause.clone());
        }
        self.left().is_zero().then_some(RetryCause::Timeout)
    }
}

/// One HTTP exchange's result, before interpretation.
enum Exchange {
    Answered { status: u16, body: Vec<u8> },
    Failed(RetryCause),
}

impl SunbirdAdapter {
    /// An adapter for `config`, asking `tokens` for user tokens.
    pub fn new(config: SunbirdConfig, tokens: Arc<dyn TokenProvider>) -> Result<SunbirdAdapter> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(Error::InvalidConfig {
                reason: format!("base URL {:?} is not http(s)", config.base_url),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::Client {
                reason: e.to_string(),
            })?;
        Ok(SunbirdAdapter {
            http,
            config,
            tokens,
        })
    }

    /// What kind of transport failure `e` was, naming the service's address for a failed
    /// connection; never the URL's path, query or headers.
    fn transport_cause(&self, e: &reqwest::Error) -> RetryCause {
        if e.is_timeout() {
            return RetryCause::Timeout;
        }
        let detail = if e.is_connect() {
            format!("{CANNOT_CONNECT} {}", self.config.address())
        } else if e.is_body() || e.is_decode() {
            "the connection closed while reading the answer".to_string()
        } else if e.is_request() {
            "the request failed".to_string()
        } else {
            "transport error".to_string()
        };
        RetryCause::Network { detail }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/course/v1/{path}", self.config.base_url)
    }

    async fn headers(&self, user: &str, fresh: bool) -> std::result::Result<HeaderMap, RetryCause> {
        let token = if fresh {
            self.tokens.refresh(user).await
        } else {
            self.tokens.token(user).await
        };
        let token = token.map_err(|e| RetryCause::Network {
            detail: e.to_string(),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let invalid = |what: &str| RetryCause::Network {
            detail: format!("the {what} is not a valid header value"),
        };
        if !token.0.is_empty() {
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

    /// One request, with no retry.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        body: Option<Vec<u8>>,
        traffic: &mut Traffic,
    ) -> Exchange {
        traffic.requests += 1;
        let request = match body {
            Some(body) => {
                traffic.bytes_sent += body.len() as u64;
                request.body(body)
            }
            None => request,
        };
        let request = request.timeout(self.config.timeout.min(traffic.left()));
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Exchange::Failed(self.transport_cause(&e)),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(bytes) => {
                traffic.bytes_received += bytes.len() as u64;
                Exchange::Answered {
                    status,
                    body: bytes.to_vec(),
                }
            }
            // The server may have applied the update and then dropped the connection: the
            // items stay pending, and resending them is harmless (the server's merge is a max).
            Err(e) => Exchange::Failed(self.transport_cause(&e)),
        }
    }

    /// Sends one chunk until it is answered item by item, refreshing the token once and
    /// retrying transient failures with back-off. A 400 is returned as is, for bisection.
    async fn send_chunk(
        &self,
        user: &str,
        chunk: &[&Outgoing],
        traffic: &mut Traffic,
    ) -> UpdateAnswer {
        let items: Vec<&ContentItem> = chunk.iter().map(|o| &o.item).collect();
        let body = match serde_json::to_vec(&wire::update_body(user, &items)) {
            Ok(body) => body,
            Err(e) => {
                return UpdateAnswer::Retry(RetryCause::Unparsable {
                    detail: e.to_string(),
                })
            }
        };
        match self
            .fetch(
                user,
                |http, url| http.patch(url),
                "content/state/update",
                Some(body),
                traffic,
            )
            .await
        {
            Ok((status, answer)) => wire::interpret_update(status, &answer, chunk),
            Err(cause) => UpdateAnswer::Retry(cause),
        }
    }

    /// One request with the token refreshed once after a 401/403, and transport failures,
    /// 429 and 5xx retried with back-off up to `attempts` times. Returns the last answer (a
    /// 401 after the refresh included), or why there was none.
    async fn fetch(
        &self,
        user: &str,
        method: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder + Send + Sync,
        path: &str,
        body: Option<Vec<u8>>,
        traffic: &mut Traffic,
    ) -> std::result::Result<(u16, Vec<u8>), RetryCause> {
        let mut backoff = Backoff::new(self.config.retry_base, self.config.retry_base * 16);
        let mut refreshed = false;
        loop {
            if let Some(cause) = traffic.stopped() {
                return Err(cause);
            }
            let headers = self.headers(user, refreshed).await?;
            let request = method(&self.http, self.url(path)).headers(headers);
            let cause = match self.exchange(request, body.clone(), traffic).await {
                Exchange::Answered {
                    status: 401 | 403, ..
                } if !refreshed => {
                    tracing::info!("token refused; refreshing once");
                    refreshed = true;
                    continue;
                }
                Exchange::Answered { status, .. } if status == 429 || status >= 500 => {
                    RetryCause::Server { status }
                }
                Exchange::Answered { status, body } => return Ok((status, body)),
                Exchange::Failed(cause) => {
                    let unreachable = matches!(cause, RetryCause::Timeout)
                        || matches!(&cause, RetryCause::Network { detail } if detail.starts_with(CANNOT_CONNECT));
                    if unreachable && self.config.when_unreachable == WhenUnreachable::StopAtOnce {
                        tracing::info!(%cause, "the course service is unreachable; stopping at once");
                        traffic.halted = Some(cause.clone());
                        return Err(cause);
                    }
                    cause
                }
            };
            backoff.record_failure();
            if backoff.failures() >= self.config.attempts {
                return Err(cause);
            }
            tracing::debug!(%cause, attempt = backoff.failures(), "retrying a request");
            tokio::time::sleep(backoff.delay(traffic.requests as u64).min(traffic.left())).await;
        }
    }
}

/// Splits items into requests of at most `chunk` items such that no request holds two items
/// for one (batch, content) and every batch in a request belongs to one course (Sunbird reads
/// a batch's stored rows with the first item's course). Returns item indices per request.
fn plan_requests(items: &[Outgoing], chunk: usize) -> Vec<Vec<usize>> {
    use std::collections::{HashMap, HashSet};
    struct Request<'a> {
        indices: Vec<usize>,
        course_of_batch: HashMap<&'a str, &'a str>,
        contents: HashSet<(&'a str, &'a str)>,
    }
    let mut requests: Vec<Request<'_>> = Vec::new();
    let mut open_from = 0;
    for (index, out) in items.iter().enumerate() {
        let key = out.item.key();
        let fits = |r: &Request<'_>| {
            r.indices.len() < chunk
                && r.course_of_batch
                    .get(key.batch())
                    .is_none_or(|course| *course == key.course())
                && !r.contents.contains(&(key.batch(), key.content()))
        };
        let slot = requests[open_from..]
            .iter()
            .position(fits)
            .map(|p| p + open_from);
        let request = match slot {
            Some(i) => &mut requests[i],
            None => {
                requests.push(Request {
                    indices: Vec::new(),
                    course_of_batch: HashMap::new(),
                    contents: HashSet::new(),
                });
                let last = requests.len() - 1;
                &mut requests[last]
            }
        };
        request.indices.push(index);
        request.course_of_batch.insert(key.batch(), key.course());
        request.contents.insert((key.batch(), key.content()));
        // Full requests are never looked at again.
        while requests
            .get(open_from)
            .is_some_and(|r| r.indices.len() >= chunk)
        {
            open_from += 1;
        }
    }
    requests.into_iter().map(|r| r.indices).collect()
}

/// Percent-encodes a value for one URL path segment (RFC 3986 unreserved characters stay).
fn path_segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// How a failed connection's cause starts: what tells it from a broken answer.
const CANNOT_CONNECT: &str = "cannot connect to";

fn adapter_error(cause: RetryCause) -> AdapterError {
    AdapterError::Unavailable { cause }
}

#[async_trait]
impl Adapter for SunbirdAdapter {
    async fn push(&self, user: &str, items: &[Outgoing]) -> PushReport {
        let mut traffic = Traffic::new(&self.config);
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let mut done = 0;
        for request in plan_requests(items, self.config.chunk) {
            // Bisection without recursion: a stack of index ranges still to send.
            let mut stack = vec![request];
            while let Some(indices) = stack.pop() {
                if let Some(cause) = traffic.stopped() {
                    // Unreachable or out of time: nothing more is sent, everything stays
                    // pending.
                    for &i in &indices {
                        outcomes[i] = Some(ItemOutcome::Retry {
                            cause: cause.clone(),
                        });
                    }
                    continue;
                }
                let chunk: Vec<&Outgoing> = indices.iter().map(|&i| &items[i]).collect();
                let answered_before = outcomes.iter().filter(|o| o.is_some()).count();
                match self.send_chunk(user, &chunk, &mut traffic).await {
                    UpdateAnswer::Items(answers) => {
                        for (&i, outcome) in indices.iter().zip(answers) {
                            outcomes[i] = Some(outcome);
                        }
                    }
                    UpdateAnswer::ClientError { reason } if indices.len() == 1 => {
                        tracing::warn!(%reason, "the server refused an item");
                        outcomes[indices[0]] = Some(ItemOutcome::Rejected { reason });
                    }
                    UpdateAnswer::ClientError { .. } => {
                        let (left, right) = indices.split_at(indices.len() / 2);
                        stack.push(right.to_vec());
                        stack.push(left.to_vec());
                    }
                    UpdateAnswer::Unauthorized { status } => {
                        for &i in &indices {
                            outcomes[i] = Some(ItemOutcome::Retry {
                                cause: RetryCause::CredentialsRefused { status },
                            });
                        }
                    }
                    UpdateAnswer::Retry(cause) => {
                        for &i in &indices {
                            outcomes[i] = Some(ItemOutcome::Retry {
                                cause: cause.clone(),
                            });
                        }
                    }
                }
                if let Some(progress) = &self.config.progress {
                    done += outcomes.iter().filter(|o| o.is_some()).count() - answered_before;
                    (progress.0)(done, items.len());
                }
            }
        }
        PushReport {
            outcomes: outcomes
                .into_iter()
                .map(|o| {
                    o.unwrap_or(ItemOutcome::Retry {
                        cause: RetryCause::NotInResult,
                    })
                })
                .collect(),
            requests: traffic.requests,
            bytes_sent: traffic.bytes_sent,
            bytes_received: traffic.bytes_received,
        }
    }

    async fn read_states(
        &self,
        user: &str,
        course: &str,
        batch: &str,
    ) -> std::result::Result<Vec<ContentItem>, AdapterError> {
        let body = serde_json::to_vec(&wire::read_body(user, course, batch)).map_err(|e| {
            adapter_error(RetryCause::Unparsable {
                detail: e.to_string(),
            })
        })?;
        let (status, answer) = self
            .fetch(
                user,
                |http, url| http.post(url),
                "content/state/read",
                Some(body),
                &mut Traffic::new(&self.config),
            )
            .await
            .map_err(adapter_error)?;
        check_status(status, &answer)?;
        wire::parse_read(user, &answer)
            .map_err(|detail| adapter_error(RetryCause::Unparsable { detail }))
    }

    async fn enrolled_courses(
        &self,
        user: &str,
    ) -> std::result::Result<Vec<EnrolledCourse>, AdapterError> {
        // The SDK's query, plus the leaf nodes the offline answer counts completions against.
        let path = format!(
            "user/enrollment/list/{}?orgdetails=orgName,email&fields=contentType,topic,name,channel,pkgVersion,primaryCategory,trackable,leafNodes,leafNodesCount&batchDetails=name,endDate,startDate,status,enrollmentType,createdBy,certificates",
            path_segment(user)
        );
        let (status, answer) = self
            .fetch(
                user,
                |http, url| http.get(url),
                &path,
                None,
                &mut Traffic::new(&self.config),
            )
            .await
            .map_err(adapter_error)?;
        check_status(status, &answer)?;
        wire::parse_enrollment_list(&answer)
            .map(crate::enrollment::for_the_core)
            .map_err(|detail| adapter_error(RetryCause::Unparsable { detail }))
    }
}

fn check_status(status: u16, body: &[u8]) -> std::result::Result<(), AdapterError> {
    match status {
        200..=299 => Ok(()),
        401 | 403 => Err(adapter_error(RetryCause::CredentialsRefused { status })),
        _ => Err(AdapterError::Refused {
            status,
            reason: wire::error_reason(body).unwrap_or_else(|| format!("HTTP {status}")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headway::{ContentKey, ContentState};

    fn out(course: &str, batch: &str, content: &str) -> Outgoing {
        Outgoing {
            item: ContentItem::new(
                ContentKey::new("u", course, batch, content).unwrap(),
                ContentState::default(),
            ),
            server: None,
        }
    }

    #[test]
    fn user_ids_are_percent_encoded_in_the_list_path() {
        assert_eq!(path_segment("95e4942d-cbe8"), "95e4942d-cbe8");
        assert_eq!(path_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    }

    #[test]
    fn requests_hold_at_most_chunk_items_and_one_course_per_batch() {
        let mut items: Vec<Outgoing> = (0..250)
            .map(|i| out("c1", "b1", &format!("k{i}")))
            .collect();
        items.push(out("c2", "b1", "k0")); // same batch under another course: another request
        let plan = plan_requests(&items, 100);
        assert_eq!(
            plan.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50, 1]
        );
        assert_eq!(plan[3], vec![250]);
        for request in &plan {
            let courses: std::collections::HashSet<&str> = request
                .iter()
                .map(|&i| items[i].item.key().course())
                .collect();
            assert_eq!(
                courses.len(),
                1,
                "a request mixed two courses for one batch"
            );
        }
    }
}
