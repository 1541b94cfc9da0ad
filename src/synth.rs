//! Synthetic tweet sets for scale work: texts recombined from a real corpus, and vectors
//! "near real ones", so a million-tweet index can be built without embedding a million
//! texts on a CPU.
//!
//! Tweet k takes the first half of one real tweet's words (its head) and the second half of
//! another's (its tail), with the date and author of the first and the counts of the second.
//! Its vector is built the way mean pooling builds the real one: the model's embeddings of
//! the head and of the tail, each weighted by its token count, summed, plus a little noise
//! (texts repeat once N nears the number of head/tail pairs, vectors should not), and
//! renormalised. `scripts/synth-realism.sh` compares these vectors with the real
//! embeddings of the same texts. Everything follows from the seed.

use crate::corpus::Tweet;
use crate::embed::Encoder;
use crate::error::Result;

/// First status id of synthetic tweets: far above any real 2022 id, so the two never clash.
pub const FIRST_ID: u64 = 9_000_000_000_000_000_000;
/// Synthetic tweets are posted a minute apart (their ids are snowflakes), so none looks like
/// the next part of a thread ([`crate::corpus::threads`]).
const SPACING_MS: u64 = 60_000;
/// The most tweets one run can make before their ids would pass `u64::MAX` (about 37.5
/// million): beyond it ids would wrap around and repeat.
pub const MAX_TWEETS: u64 = (u64::MAX - FIRST_ID) / (SPACING_MS << 22);

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

/// A deterministic stream of [`MAX_TWEETS`] tweets recombined from `base` (which must not be
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
}

/// The noise stream for the vectors of the tweets made with `seed`: separate from the texts'
/// stream, so the texts are the same whether or not vectors are made.
pub fn vector_rng(seed: u64) -> Rng {
    Rng::new(seed ^ 0x5EED)
}

/// The first `n` tweets made from `base` with `seed` and their vectors (row-major): what
/// `tweetsim synth --tweets N --seed SEED --vectors` writes, held in memory.
pub fn tweets_with_vectors(
    base: &[Tweet],
    halves: &Halves,
    n: usize,
    seed: u64,
) -> (Vec<Tweet>, Vec<f32>) {
    let mut rng = vector_rng(seed);
    let mut tweets = Vec::with_capacity(n);
    let mut vectors = Vec::with_capacity(n * halves.dim());
    for made in Tweets::new(base, seed).take(n) {
        vectors.extend(halves.vector(made.parents, &mut rng));
        tweets.push(made.tweet);
    }
    (tweets, vectors)
}

impl Iterator for Tweets<'_> {
    type Item = Made;

    fn next(&mut self) -> Option<Made> {
        if self.made as u64 >= MAX_TWEETS {
            return None;
        }
        let (i, j) = (
            self.rng.below(self.base.len()),
            self.rng.below(self.base.len()),
        );
        let (a, b) = (&self.base[i], &self.base[j]);
        let text = [head(&a.text), tail(&b.text)].concat().join(" ");
        self.made += 1;
        let id = FIRST_ID + ((self.made as u64 * SPACING_MS) << 22);
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

/// The first half of a text's words, rounded up: what a synthetic tweet takes from its
/// first parent.
fn head(text: &str) -> Vec<&str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words[..words.len().div_ceil(2)].to_vec()
}

/// The second half of a text's words, rounded up: what it takes from its second parent.
fn tail(text: &str) -> Vec<&str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words[words.len() / 2..].to_vec()
}

/// Standard deviation of the noise added to each component of a unit mix. Chosen so that
/// synthetic vectors' neighbourhoods (nearest-neighbour cosines, the gap between the 10th
/// and 11th, local dimension) match those of the real embeddings of the same texts; see
/// `scripts/synth-realism.sh`.
pub const NOISE: f32 = 0.012;

/// The model's embeddings of every base tweet's head and tail, and their token counts:
/// all that synthetic vectors are made from.
pub struct Halves {
    dim: usize,
    /// Heads of all base tweets, then tails, `dim` floats each, unit length.
    vectors: Vec<f32>,
    /// Tokens of each half (special tokens included), the weight mean pooling gives it.
    tokens: Vec<f32>,
}

impl Halves {
    /// Embeds the heads and tails of `base` (the same slice [`Tweets`] draws from) as the
    /// store would embed a tweet of that text.
    pub fn embed(base: &[Tweet], encoder: &Encoder) -> Result<Halves> {
        let halves = base
            .iter()
            .map(|t| head(&t.text))
            .chain(base.iter().map(|t| tail(&t.text)));
        let texts: Vec<String> = halves
            .map(|words| {
                Tweet {
                    text: words.join(" "),
                    ..base[0].clone()
                }
                .embedding_text()
            })
            .collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let tokens = encoder.tokenize(&texts)?;
        let vectors = encoder.embed_tokens(&tokens, |_| {})?;
        Ok(Halves {
            dim: encoder.dim(),
            vectors,
            tokens: tokens.iter().map(|t| t.len() as f32).collect(),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The vector of a tweet made from `parents` (as [`Made::parents`]): head of the first
    /// plus tail of the second, token-weighted, normalised, plus [`NOISE`], renormalised.
    pub fn vector(&self, (i, j): (usize, usize), rng: &mut Rng) -> Vec<f32> {
        let tails = self.tokens.len() / 2;
        let (h, t) = (i, tails + j);
        let row = |k: usize| &self.vectors[k * self.dim..(k + 1) * self.dim];
        let (wh, wt) = (self.tokens[h], self.tokens[t]);
        let mut v: Vec<f32> = row(h)
            .iter()
            .zip(row(t))
            .map(|(x, y)| wh * x + wt * y)
            .collect();
        normalise(&mut v);
        v.iter_mut().for_each(|x| *x += NOISE * rng.normal());
        normalise(&mut v);
        v
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
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
    fn the_stream_ends_at_the_last_id_that_fits() {
        let base = Corpus::bundled().tweets;
        let mut gen = Tweets::new(&base, 1);
        gen.made = MAX_TWEETS as usize - 1;
        let last = gen.next().expect("the last tweet").tweet.id;
        assert_eq!(last, FIRST_ID + ((MAX_TWEETS * SPACING_MS) << 22));
        assert!(
            last > u64::MAX - (SPACING_MS << 22),
            "a next id would overflow"
        );
        assert!(gen.next().is_none());
    }

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
        // Recombined replies are not parts of threads.
        let threads = crate::corpus::threads::previous_parts(&a);
        assert!(threads.iter().all(Option::is_none), "{threads:?}");
    }

    #[test]
    fn a_vector_is_its_halves_weighted_by_tokens_plus_a_little_noise() {
        let dim = 384;
        let unit = |k: usize| -> Vec<f32> { (0..dim).map(|i| f32::from(i == k)).collect() };
        // Two base tweets: heads along axes 0 and 1, tails along 2 and 3.
        let halves = Halves {
            dim,
            vectors: [unit(0), unit(1), unit(2), unit(3)].concat(),
            tokens: vec![3.0, 5.0, 7.0, 1.0],
        };
        let mut rng = Rng::new(1);
        let v = halves.vector((0, 1), &mut rng);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        // Head of tweet 0 (3 tokens) and tail of tweet 1 (1 token): 3:1.
        let (h, t) = (3.0 / 10f32.sqrt(), 1.0 / 10f32.sqrt());
        assert!(
            (v[0] - h).abs() < 0.06 && (v[3] - t).abs() < 0.06,
            "{:?}",
            &v[..4]
        );
        assert!(v[1].abs() < 0.06 && v[2].abs() < 0.06);
        // The same parents again: close, never identical.
        let w = halves.vector((0, 1), &mut rng);
        let cos: f32 = v.iter().zip(&w).map(|(a, b)| a * b).sum();
        assert!(cos > 0.9 && cos < 0.9999, "{cos}");
    }

    #[test]
    fn a_tweet_is_the_head_of_one_parent_and_the_tail_of_the_other() {
        let base = Corpus::bundled().tweets;
        for made in Tweets::new(&base, 3).take(50) {
            let (i, j) = made.parents;
            let expected = [head(&base[i].text), tail(&base[j].text)].concat();
            let words: Vec<&str> = made.tweet.text.split_whitespace().collect();
            assert_eq!(words, expected);
            assert_eq!(made.tweet.date, base[i].date);
            assert_eq!(made.tweet.metrics, base[j].metrics);
        }
        assert_eq!(head("a b c"), ["a", "b"]);
        assert_eq!(tail("a b c"), ["b", "c"]);
    }
}
