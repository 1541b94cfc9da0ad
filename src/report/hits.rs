//! Search hits as records for programs: one shape for `similar --json` and `tweetsim serve`,
//! so a script written against one reads the other.

use serde::Serialize;

use crate::error::Result;
use crate::index::Store;
use crate::search::Ranked;

/// One ranked hit with its tweet's fields and the scores that ranked it.
#[derive(Debug, Clone, Serialize)]
pub struct HitRecord {
    pub rank: usize,
    pub score: f32,
    pub dense: f32,
    pub lexical: Option<f32>,
    /// The query's words this tweet matched (only when an explanation was asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<Vec<String>>,
    /// What the hit's thread added to its score, and from which part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadLift>,
    pub id: String,
    pub date: Option<String>,
    pub url: String,
    pub text: String,
    pub likes: u64,
    pub retweets: u64,
    pub replies: u64,
    pub is_reply: bool,
    /// Status ids of near-duplicates folded into this hit.
    pub duplicates: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThreadLift {
    pub lift: f32,
    pub from: String,
}

/// The records of `hits`, ranked from 1; `explain` (the query text) fills in `matched`.
pub fn hit_records(
    store: &Store,
    hits: &[Ranked],
    explain: Option<&str>,
) -> Result<Vec<HitRecord>> {
    hits.iter()
        .enumerate()
        .map(|(i, h)| {
            let t = store.tweet(h.row)?;
            Ok(HitRecord {
                rank: i + 1,
                score: h.score,
                dense: h.dense,
                lexical: h.lexical,
                matched: explain.map(|q| store.lexical().matched(q, &t.embedding_text())),
                thread: h.thread.map(|(part, lift)| ThreadLift {
                    lift,
                    from: store.id(part).to_string(),
                }),
                id: t.id.to_string(),
                date: t.date.map(|d| d.to_string()),
                url: t.url,
                text: t.text,
                likes: t.metrics.likes,
                retweets: t.metrics.retweets,
                replies: t.metrics.replies,
                is_reply: t.is_reply,
                duplicates: h
                    .duplicates
                    .iter()
                    .map(|&(r, _)| store.id(r).to_string())
                    .collect(),
            })
        })
        .collect()
}
