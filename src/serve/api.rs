//! The endpoints: each checks its request (a 4xx naming the field at fault), takes one
//! snapshot of the store, and answers JSON from it. Searches and topic reports run on the
//! blocking pool so slow requests never stall the event loop.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::batcher::{Batcher, Refused};
use super::error::ApiError;
use super::live::{Live, Snapshot, TopicView};
use super::metrics::Metrics;
use super::params::Params;
use super::Limits;
use crate::corpus::Tweet;
use crate::embed::ModelIdentity;
use crate::report::HitRecord;
use crate::search::{self, Mode};

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    pub live: Arc<Live>,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    pub model: ModelIdentity,
    pub limits: Limits,
}

type Answer = Result<Response, ApiError>;

/// The generation an answer without a body field for it came from.
pub const GENERATION_HEADER: &str = "x-tweetsim-generation";

/// Parameters of `/tweets/{id}/similar`; `/similar` takes `q` too.
pub(super) const SEARCH_PARAMS: &[&str] = &[
    "k",
    "since",
    "until",
    "no_replies",
    "min_likes",
    "mode",
    "exact",
    "collapse",
    "explain",
];

/// The answer of both similarity endpoints, fields in reading order.
#[derive(Serialize)]
struct Hits {
    generation: String,
    /// The text searched for (`/similar`).
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    /// The tweet searched from (`/tweets/{id}/similar`).
    #[serde(skip_serializing_if = "Option::is_none")]
    tweet: Option<Tweet>,
    mode: &'static str,
    k: usize,
    hits: Vec<HitRecord>,
}

/// `GET /similar?q=...`: tweets similar to a free text.
pub async fn similar(State(app): State<App>, RawQuery(raw): RawQuery) -> Answer {
    let p = Params::parse(raw.as_deref(), &[&["q"], SEARCH_PARAMS].concat())?;
    let q = match p.get("q") {
        None => return Err(ApiError::bad("q", "missing 'q': the text to search for")),
        Some(t) if t.trim().is_empty() => {
            return Err(ApiError::bad(
                "q",
                "'q' is empty: give some text to search for",
            ))
        }
        Some(t) => t.trim().to_string(),
    };
    let max = app.limits.max_query_bytes;
    if q.len() > max {
        return Err(ApiError::bad(
            "q",
            format!("'q' is {} bytes, over the {max}-byte limit", q.len()),
        ));
    }
    let opts = search_options(&p, &app.limits)?;
    let vector = app.batcher.embed(vec![q.clone()]).await.map_err(refused)?;
    let snap = app.live.snapshot();
    blocking(move || {
        let query = search::Query {
            text: &q,
            vector: &vector,
            exclude: None,
        };
        let hits = ranked(&snap, &query, &opts)?;
        Ok(Hits {
            generation: snap.generation().to_string(),
            query: Some(q.clone()),
            tweet: None,
            mode: mode_name(opts.mode),
            k: opts.k,
            hits,
        })
    })
    .await
    .map(|h| Json(h).into_response())
}

/// `GET /tweets/{id}/similar`: tweets similar to one of the store (never itself).
pub async fn similar_to_tweet(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let id = tweet_id(id)?;
    let p = Params::parse(raw.as_deref(), SEARCH_PARAMS)?;
    let opts = search_options(&p, &app.limits)?;
    let snap = app.live.snapshot();
    blocking(move || {
        let store = &snap.store;
        let row = store.row(id).ok_or_else(|| unknown(id, store.len()))?;
        let tweet = store.tweet(row).map_err(ApiError::internal)?;
        let text = tweet.embedding_text();
        let query = search::Query {
            text: &text,
            vector: store.vector(row),
            exclude: Some(row),
        };
        let hits = ranked(&snap, &query, &opts)?;
        Ok(Hits {
            generation: snap.generation().to_string(),
            query: None,
            tweet: Some(tweet),
            mode: mode_name(opts.mode),
            k: opts.k,
            hits,
        })
    })
    .await
    .map(|h| Json(h).into_response())
}

/// The hits of one search as records; `explain` adds the query words each matched.
fn ranked(
    snap: &Snapshot,
    query: &search::Query,
    opts: &search::Options,
) -> Result<Vec<HitRecord>, ApiError> {
    let hits = search::search(&snap.store, query, opts).map_err(ApiError::internal)?;
    crate::report::hit_records(&snap.store, &hits, opts.explain.then_some(query.text))
        .map_err(ApiError::internal)
}

/// `/tweets/{id}`.
#[derive(Serialize)]
struct OneTweet {
    generation: String,
    tweet: Tweet,
    /// Status ids of its self-thread, in posting order, itself among them.
    thread: Vec<String>,
}

/// `GET /tweets/{id}`: one tweet as the store holds it, with the ids of its self-thread.
pub async fn tweet(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let id = tweet_id(id)?;
    Params::parse(raw.as_deref(), &[])?;
    let snap = app.live.snapshot();
    let store = &snap.store;
    let row = store.row(id).ok_or_else(|| unknown(id, store.len()))?;
    let tweet = store.tweet(row).map_err(ApiError::internal)?;
    let thread = store
        .thread(row)
        .into_iter()
        .map(|r| store.id(r).to_string())
        .collect();
    Ok(Json(OneTweet {
        generation: snap.generation().to_string(),
        tweet,
        thread,
    })
    .into_response())
}

/// `GET /topics`: the discovered-topics report, as `tweetsim topics --json` prints it.
pub async fn topics(State(app): State<App>, RawQuery(raw): RawQuery) -> Answer {
    let (generation, view) = topic_view(&app, raw.as_deref()).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        generation,
        view.json.clone(),
    )
        .into_response())
}

/// `GET /topics/charts`: the report's charts as HTML sections, for the search page.
pub async fn topic_charts(State(app): State<App>, RawQuery(raw): RawQuery) -> Answer {
    let (generation, view) = topic_view(&app, raw.as_deref()).await?;
    Ok((generation, Html(view.charts.clone())).into_response())
}

/// The current generation's topic report (computed on its first request), and the header
/// naming that generation: the page fetches report and charts apart and checks they match.
async fn topic_view(
    app: &App,
    raw: Option<&str>,
) -> Result<([(header::HeaderName, String); 1], Arc<TopicView>), ApiError> {
    Params::parse(raw, &[])?;
    let snap = app.live.snapshot();
    let generation = snap.generation().to_string();
    let view = blocking(move || snap.topics()).await?;
    Ok((
        [(
            header::HeaderName::from_static(GENERATION_HEADER),
            generation,
        )],
        view,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbedRequest {
    texts: Vec<String>,
}

#[derive(Serialize)]
struct EmbedResponse {
    model: String,
    dim: usize,
    embeddings: Vec<Vec<f32>>,
}

/// `POST /embed` with `{"texts": [...]}`: unit vectors, as `tweetsim embed --verbatim` makes
/// them; texts of concurrent requests share encoder calls.
pub async fn embed(State(app): State<App>, headers: HeaderMap, body: Body) -> Answer {
    // JSON only: a plain form or text/plain post from a web page (which a browser sends
    // without asking) is refused before it costs anything.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error: "the body must be sent as content-type: application/json".into(),
            field: Some("content-type".into()),
        });
    }
    let limit = app.limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > limit as u64) {
        return Err(ApiError::too_large(format!(
            "the body is {n} bytes, over the {limit}-byte limit"
        )));
    }
    let bytes = to_bytes(body, limit).await.map_err(|e| {
        let over = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over {
            ApiError::too_large(format!("the body is over the {limit}-byte limit"))
        } else {
            ApiError::bad("body", format!("the body could not be read ({e})"))
        }
    })?;
    let texts = parse_texts(&bytes)?;
    if texts.len() > app.limits.max_texts {
        return Err(ApiError::bad(
            "texts",
            format!(
                "{} texts, over the limit of {} per request",
                texts.len(),
                app.limits.max_texts
            ),
        ));
    }
    let vectors = app.batcher.embed(texts).await.map_err(refused)?;
    let dim = app.model.dim;
    Ok(Json(EmbedResponse {
        model: app.model.id.clone(),
        dim,
        embeddings: vectors.chunks_exact(dim).map(<[f32]>::to_vec).collect(),
    })
    .into_response())
}

/// The texts of an embed request, each error naming the field at fault.
fn parse_texts(bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    let shape = "expected {\"texts\": [\"...\", ...]}";
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad("body", format!("the body is not UTF-8 ({e})")))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad("body", format!("the body is not JSON ({e}); {shape}")))?;
    match value.as_object() {
        None => {
            return Err(ApiError::bad(
                "body",
                format!("the body is not a JSON object; {shape}"),
            ))
        }
        Some(o) if o.is_empty() => {
            return Err(ApiError::bad("texts", format!("missing 'texts'; {shape}")))
        }
        Some(_) => {}
    }
    let req: EmbedRequest = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::bad(&field, format!("{shape}: {}", e.inner()))
    })?;
    if req.texts.is_empty() {
        return Err(ApiError::bad(
            "texts",
            "'texts' is empty: give at least one text",
        ));
    }
    if let Some(i) = req.texts.iter().position(|t| t.trim().is_empty()) {
        return Err(ApiError::bad(
            &format!("texts[{i}]"),
            format!("text {i} is empty"),
        ));
    }
    Ok(req.texts)
}

#[derive(Serialize)]
struct Health {
    /// `ok`, or `degraded` when the encoder has stopped or a newer generation cannot be
    /// served.
    status: &'static str,
    generation: String,
    tweets: usize,
    model: String,
    encoder: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    behind: Option<String>,
}

/// `GET /healthz`: whether it can answer, and which generation it serves. A stopped encoder
/// is a 503, so a load balancer takes the process out; a generation it cannot switch to is
/// reported but still a 200 (the old one answers).
pub async fn healthz(State(app): State<App>) -> Response {
    let snap = app.live.snapshot();
    let alive = app.batcher.alive();
    let behind = app.live.behind();
    let health = Health {
        status: if alive && behind.is_none() {
            "ok"
        } else {
            "degraded"
        },
        generation: snap.generation().to_string(),
        tweets: snap.store.len(),
        model: app.model.id.clone(),
        encoder: if alive { "running" } else { "stopped" },
        behind,
    };
    let status = if alive {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

/// `GET /metrics`, in the OpenMetrics text format.
pub async fn metrics(State(app): State<App>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// `GET /`: the search page (one file, no external resources). The policy lets the page
/// talk to this server alone and run only its own inline script.
pub async fn page() -> Response {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
        )],
        Html(include_str!("page.html")),
    )
        .into_response()
}

/// Any other path.
pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {method} {}; the API is described at /openapi.json",
            uri.path()
        ),
    )
}

/// A known path with another method.
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}; see /openapi.json", uri.path()),
    )
}

/// Counts and times every request by its route (not its raw path, which would make one
/// series per query), and tells browsers not to second-guess content types.
pub async fn track(State(app): State<App>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let started = Instant::now();
    let mut response = next.run(req).await;
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    app.metrics.observe_request(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

fn search_options(p: &Params, limits: &Limits) -> Result<search::Options, ApiError> {
    let collapse = match p.get("collapse") {
        None => true,
        Some(_) => p.flag("collapse")?,
    };
    Ok(search::Options {
        mode: p.mode()?,
        k: p.count("k", 10, limits.max_k)?,
        filter: p.filter()?,
        exact: p.flag("exact")?,
        collapse: collapse.then_some(search::DUPLICATE_COSINE),
        explain: p.flag("explain")?,
        ..search::Options::default()
    })
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Dense => "dense",
        Mode::Lexical => "lexical",
        Mode::Hybrid => "hybrid",
    }
}

fn tweet_id(id: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::bad("id", format!("bad tweet id: {e}")))?;
    crate::corpus::parse_id(&id).ok_or_else(|| {
        ApiError::bad(
            "id",
            format!("'{id}' is not a status id (digits, at most {})", u64::MAX),
        )
    })
}

fn unknown(id: u64, tweets: usize) -> ApiError {
    ApiError::not_found(
        "id",
        format!("tweet {id} is not in the store ({tweets} tweets)"),
    )
}

/// A busy queue is the client's to retry (503); a failed encoder is the server's (500).
fn refused(r: Refused) -> ApiError {
    match r {
        Refused::Busy => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the encoder's queue is full; retry shortly",
        ),
        Refused::Failed(why) => ApiError::internal(why),
    }
}

/// Runs CPU work (a search, a topic report) off the event loop.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
}
