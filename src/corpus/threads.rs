//! Which tweet continues which: the self-threads an author posts in one go ("1/ … 2/ … 3/").
//!
//! A thread's parts are written to be read together, so a part that never names its subject
//! ("in this lecture we: 1. estimate a bigram …") is still about it; search lends each part
//! some of the best score in its thread. No source we read links a reply to the tweet it
//! answers for every tweet (the bundled corpus never does), so threads are inferred from what
//! every corpus has: a self-thread's parts are replies without a leading `@handle` (a reply to
//! oneself names nobody), by the same author, posted within seconds of the previous part.
//! The posting time is read from the status id (a Twitter "snowflake" id holds its millisecond
//! timestamp in its upper bits).

use std::collections::HashMap;

use super::Tweet;

/// The longest pause between two parts of a thread. Threads written in advance go out within
/// a second or two; 10 s leaves room for a slow client without joining separate tweets.
pub const THREAD_GAP_MS: u64 = 10_000;
/// Parts per thread at most: a longer run starts a new thread, so no chain can grow without
/// bound (synthetic corpora number their tweets consecutively).
pub const MAX_THREAD: usize = 32;

/// The Unix time (ms) that snowflake ids count from.
const TWITTER_EPOCH_MS: u64 = 1_288_834_974_657;

/// Milliseconds since the Unix epoch at which a status was posted, from its snowflake id;
/// `None` for ids from before snowflakes (2010), which carry no time.
pub fn posted_ms(id: u64) -> Option<u64> {
    (id >= 1_000_000_000_000).then(|| (id >> 22) + TWITTER_EPOCH_MS)
}

/// The first snowflake id of millisecond `ms` (Unix time): tests post tweets at chosen times.
#[cfg(test)]
pub(crate) fn id_posted_at(ms: u64) -> u64 {
    (ms - TWITTER_EPOCH_MS) << 22
}

/// For each tweet, the index of the tweet it continues (the previous part of its thread), if
/// any.
pub fn previous_parts(tweets: &[Tweet]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..tweets.len()).collect();
    order.sort_by_key(|&i| (tweets[i].id, i));
    let mut previous = vec![None; tweets.len()];
    let mut length = vec![1usize; tweets.len()];
    // Each author's latest tweet so far, in posting order.
    let mut latest: HashMap<&str, usize> = HashMap::new();
    for i in order {
        let t = &tweets[i];
        if let Some(&p) = latest.get(t.author.as_str()) {
            let gap = posted_ms(t.id)
                .zip(posted_ms(tweets[p].id))
                .map(|(a, b)| a - b);
            let continues = t.is_reply
                && !t.text.trim_start().starts_with('@')
                && t.id != tweets[p].id
                && gap.is_some_and(|g| g <= THREAD_GAP_MS)
                && length[p] < MAX_THREAD;
            if continues {
                previous[i] = Some(p);
                length[i] = length[p] + 1;
            }
        }
        latest.insert(t.author.as_str(), i);
    }
    previous
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Metrics;

    /// A tweet by `author` posted `ms` after a fixed moment in 2022.
    fn at(ms: u64, author: &str, is_reply: bool, text: &str) -> Tweet {
        let id = id_posted_at(1_660_000_000_000 + ms) + 7;
        Tweet {
            id,
            num: 1,
            author: author.into(),
            date: None,
            url: String::new(),
            metrics: Metrics::default(),
            is_reply,
            text: text.into(),
            translation: None,
        }
    }

    #[test]
    fn snowflake_ids_carry_their_time() {
        // https://x.com/karpathy/status/1567592845221179392 went out on 2022-09-07 at 19:17:13 UTC.
        assert_eq!(posted_ms(1567592845221179392), Some(1_662_578_233_424));
        assert_eq!(posted_ms(20), None);
    }

    #[test]
    fn parts_posted_together_form_a_thread() {
        let tweets = vec![
            at(3_000, "@a", true, "3/ and the end"),
            at(0, "@a", false, "1/ a thread about makemore"),
            at(1_500, "@a", true, "2/ in this lecture we"),
            at(2_000, "@b", true, "someone else's reply, same second"),
            at(4_000, "@a", true, "@c a reply to someone else"),
            at(60_000, "@a", true, "a self-reply a minute later"),
        ];
        assert_eq!(
            previous_parts(&tweets),
            [Some(2), None, Some(1), None, None, None]
        );
    }

    #[test]
    fn threads_are_cut_at_the_longest_length() {
        let tweets: Vec<Tweet> = (0..MAX_THREAD as u64 + 1)
            .map(|i| at(i, "@a", i > 0, "part"))
            .collect();
        let previous = previous_parts(&tweets);
        assert_eq!(previous[MAX_THREAD - 1], Some(MAX_THREAD - 2));
        assert_eq!(previous[MAX_THREAD], None);
    }
}
