//! The endpoints: each checks its request (a 4xx naming the field at fault), takes one
//! snapshot of the store, and answers JSON from it. Searches and topic reports run on the
//! blocking pool so slow requests never stall the event loop.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::batcher::Batcher;
use super::error::ApiError;
use super::live::Live;
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

/// `/tweets/{id}`.
#[derive(Serialize)]
struct OneTweet {
    generation: String,
    tweet: Tweet,
    /// Status ids of its self-thread, in posting order, itself among them.
    thread: Vec<String>,
}

/// Parameters of both similarity endpoints; `/similar` also takes `q`.
const SEARCH_PARAMS: &[&str] = &[
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

/// `GET /similar?q=...`: tweets similar to a free text.
pub async fn similar(State(app): State<App>, RawQuery(raw): RawQuery) -> Answer {
    let mut allowed = vec!["q"];
    allowed.extend_from_slice(SEARCH_PARAMS);
    let p = Params::parse(raw.as_deref(), &allowed)?;
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
    if q.len() > app.limits.max_body_bytes {
        return Err(ApiError::bad(
            "q",
            format!(
                "'q' is {} bytes, over the {}-byte limit",
                q.len(),
                app.limits.max_body_bytes
            ),
        ));
    }
    let opts = search_options(&p, &app.limits)?;
    let explain = p.flag("explain")?;
    let vector = app
        .batcher
        .embed(vec![q.clone()])
        .await
        .map_err(ApiError::internal)?;
    let snap = app.live.snapshot();
    blocking(move || {
        let query = search::Query {
            text: &q,
            vector: &vector,
            exclude: None,
        };
        let hits = search::search(&snap.store, &query, &opts).map_err(ApiError::internal)?;
        let records = crate::report::hit_records(&snap.store, &hits, explain.then_some(&*q))
            .map_err(ApiError::internal)?;
        Ok(Json(Hits {
            generation: snap.generation.clone(),
            query: Some(q),
            tweet: None,
            mode: mode_name(opts.mode),
            k: opts.k,
            hits: records,
        })
        .into_response())
    })
    .await
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
    let explain = p.flag("explain")?;
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
        let hits = search::search(store, &query, &opts).map_err(ApiError::internal)?;
        let records = crate::report::hit_records(store, &hits, explain.then_some(&*text))
            .map_err(ApiError::internal)?;
        Ok(Json(Hits {
            generation: snap.generation.clone(),
            query: None,
            tweet: Some(tweet),
            mode: mode_name(opts.mode),
            k: opts.k,
            hits: records,
        })
        .into_response())
    })
    .await
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
    let thread: Vec<String> = store
        .thread(row)
        .into_iter()
        .map(|r| store.id(r).to_string())
        .collect();
    Ok(Json(OneTweet {
        generation: snap.generation.clone(),
        tweet,
        thread,
    })
    .into_response())
}

/// `GET /topics`: the discovered-topics report, as `tweetsim topics --json` prints it.
pub async fn topics(State(app): State<App>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let snap = app.live.snapshot();
    let generation = snap.generation.clone();
    let view = blocking(move || snap.topics().map_err(ApiError::internal)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::HeaderName::from_static(GENERATION_HEADER),
                generation.as_str(),
            ),
        ],
        view.json.clone(),
    )
        .into_response())
}

/// `GET /topics/charts`: the report's charts as HTML sections, for the search page.
pub async fn topic_charts(
    State(app): State<App>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let snap = app.live.snapshot();
    let generation = snap.generation.clone();
    let view = blocking(move || snap.topics().map_err(ApiError::internal)).await?;
    Ok((
        [(
            header::HeaderName::from_static(GENERATION_HEADER),
            generation.as_str(),
        )],
        Html(view.charts.clone()),
    )
        .into_response())
}

/// The generation an answer without a body field for it came from.
pub const GENERATION_HEADER: &str = "x-tweetsim-generation";

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
    let limit = app.limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(format!(
            "the body is {} bytes, over the {limit}-byte limit",
            declared.unwrap_or_default()
        )));
    }
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        ApiError::too_large(format!(
            "the body is over the {limit}-byte limit (or was cut off)"
        ))
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| ApiError::bad("body", format!("the body is not UTF-8 ({e})")))?;
    let shape = "expected {\"texts\": [\"...\", ...]}";
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad("body", format!("the body is not JSON ({e}); {shape}")))?;
    if !value.is_object() {
        return Err(ApiError::bad(
            "body",
            format!("the body is not a JSON object; {shape}"),
        ));
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
    if req.texts.len() > app.limits.max_texts {
        return Err(ApiError::bad(
            "texts",
            format!(
                "{} texts, over the limit of {} per request",
                req.texts.len(),
                app.limits.max_texts
            ),
        ));
    }
    if let Some(i) = req.texts.iter().position(|t| t.trim().is_empty()) {
        return Err(ApiError::bad(
            &format!("texts[{i}]"),
            format!("text {i} is empty"),
        ));
    }
    let n = req.texts.len();
    let vectors = app
        .batcher
        .embed(req.texts)
        .await
        .map_err(ApiError::internal)?;
    let dim = app.model.dim;
    debug_assert_eq!(vectors.len(), n * dim);
    let response = EmbedResponse {
        model: app.model.id.clone(),
        dim,
        embeddings: vectors.chunks_exact(dim).map(<[f32]>::to_vec).collect(),
    };
    Ok(Json(response).into_response())
}

/// `GET /healthz`: up, and which generation it serves.
pub async fn healthz(State(app): State<App>) -> Json<Value> {
    let snap = app.live.snapshot();
    Json(json!({
        "status": "ok",
        "generation": snap.generation,
        "tweets": snap.store.len(),
        "model": app.model.id,
    }))
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

/// `GET /`: the search page (one file, no external resources).
pub async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// Any other path.
pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::status(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {method} {}; the API is described at /openapi.json",
            uri.path()
        ),
    )
}

/// A known path with another method.
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}; see /openapi.json", uri.path()),
    )
}

/// Counts and times every request by its route (not its raw path, which would make one
/// series per query).
pub async fn track(State(app): State<App>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
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
    match id.parse::<u64>() {
        Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ApiError::bad(
            "id",
            format!("'{id}' is not a status id (digits, at most {})", u64::MAX),
        )),
    }
}

fn unknown(id: u64, tweets: usize) -> ApiError {
    ApiError::not_found(
        "id",
        format!("tweet {id} is not in the store ({tweets} tweets)"),
    )
}

/// Runs CPU work (a search, a topic report) off the event loop.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
}
