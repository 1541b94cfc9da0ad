//! Synthetic tweet sets for scale work: texts recombined from a real corpus, and vectors
//! "near real ones", so a million-tweet index can be built without embedding a million
//! texts on a CPU.
//!
//! Tweet k takes the first half of one real tweet's words and the second half of another's
//! (date and author of the first, counts of the second); its vector is 0.7·v_i + 0.3·v_j plus
//! small noise, renormalised: close to the real tweets it came from, as a real paraphrase
//! would be, and never an exact duplicate. Everything follows from the seed.

use crate::corpus::Tweet;

/// First status id of synthetic tweets: far above any real 2022 id, so the two never clash.
pub const FIRST_ID: u64 = 9_000_000_000_000_000_000;

/// SplitMix64: tiny, fast and fully determined by its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = ((self.next_u64() >> 11) as f64) / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// One synthetic tweet and the two rows of `base` it was made from.
pub struct Made {
    pub tweet: Tweet,
    pub parents: (usize, usize),
}

/// An endless, deterministic stream of tweets recombined from `base` (which must not be
/// empty).
pub struct Tweets<'a> {
    base: &'a [Tweet],
    rng: Rng,
    made: usize,
}

impl<'a> Tweets<'a> {
    pub fn new(base: &'a [Tweet], seed: u64) -> Tweets<'a> {
        assert!(
            !base.is_empty(),
            "synthetic tweets need real ones to start from"
        );
        Tweets {
            base,
            rng: Rng::new(seed),
            made: 0,
        }
    }

    /// The generator, for drawing each tweet's vector noise in step with its text.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}

impl Iterator for Tweets<'_> {
    type Item = Made;

    fn next(&mut self) -> Option<Made> {
        let (i, j) = (
            self.rng.below(self.base.len()),
            self.rng.below(self.base.len()),
        );
        let (a, b) = (&self.base[i], &self.base[j]);
        let wa: Vec<&str> = a.text.split_whitespace().collect();
        let wb: Vec<&str> = b.text.split_whitespace().collect();
        let text = [&wa[..wa.len().div_ceil(2)], &wb[wb.len() / 2..]]
            .concat()
            .join(" ");
        self.made += 1;
        let id = FIRST_ID + self.made as u64;
        Some(Made {
            tweet: Tweet {
                id,
                num: self.made,
                url: format!("https://x.com/i/status/{id}"),
                text,
                metrics: b.metrics,
                translation: None,
                ..a.clone()
            },
            parents: (i, j),
        })
    }
}

/// 0.7·a + 0.3·b + N(0, 0.02²) per component, renormalised to unit length.
pub fn mix(a: &[f32], b: &[f32], rng: &mut Rng) -> Vec<f32> {
    let mut v: Vec<f32> = a
        .iter()
        .zip(b)
        .map(|(x, y)| 0.7 * x + 0.3 * y + 0.02 * rng.normal())
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// A tweet as one JSONL record that `corpus` reads back to the same tweet.
pub fn to_jsonl(t: &Tweet) -> String {
    serde_json::json!({
        "id": t.id.to_string(),
        "text": t.text,
        "date": t.date.map(|d| d.to_string()),
        "author": t.author,
        "url": t.url,
        "likes": t.metrics.likes,
        "retweets": t.metrics.retweets,
        "replies": t.metrics.replies,
        "quotes": t.metrics.quotes,
        "views": t.metrics.views,
        "bookmarks": t.metrics.bookmarks,
        "is_reply": t.is_reply,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Corpus, Format};
    use std::path::Path;

    #[test]
    fn same_seed_same_tweets_and_they_read_back() {
        let base = Corpus::bundled().tweets;
        let a: Vec<Tweet> = Tweets::new(&base, 7).take(50).map(|m| m.tweet).collect();
        let b: Vec<Tweet> = Tweets::new(&base, 7).take(50).map(|m| m.tweet).collect();
        assert_eq!(a, b);
        let c: Vec<Tweet> = Tweets::new(&base, 8).take(50).map(|m| m.tweet).collect();
        assert_ne!(a, c);
        let text: String = a.iter().map(|t| to_jsonl(t) + "\n").collect();
        let back = Corpus::parse(Path::new("s.jsonl"), &text, Format::Jsonl).unwrap();
        assert_eq!(back.tweets, a);
    }

    #[test]
    fn mixed_vectors_are_unit_and_near_the_first_parent() {
        let mut rng = Rng::new(1);
        let dim = 384;
        let unit = |k: usize| -> Vec<f32> { (0..dim).map(|i| f32::from(i == k)).collect() };
        let v = mix(&unit(0), &unit(1), &mut rng);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(v[0] > 0.8 && v[1] > 0.3 && v[0] < 1.0);
    }
}
