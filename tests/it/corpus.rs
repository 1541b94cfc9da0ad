//! Parsing the bundled corpus, the archive layout and JSON Lines, and refusing bad input.

use std::path::Path;

use chrono::NaiveDate;
use tweetsim::corpus::{decode_entities, Corpus, Format};

use crate::common::{data, reference_texts};

#[test]
fn bundled_corpus_every_entry_and_field() {
    let c = Corpus::load(&crate::common::repo().join("data/karpathy-2022.txt"), None).unwrap();
    assert_eq!(c.format, Format::Bundled);
    assert_eq!(c.entries, 680);
    assert_eq!(c.tweets.len(), 657);
    assert_eq!(c.merges.len(), 23);
    assert!(c.merges.iter().all(|m| m.same_text));
    assert!(c.merges.iter().any(|m| (m.kept, m.dropped) == (359, 361)));

    // The vendored copy is the one compiled in.
    assert_eq!(c.content_hash, Corpus::bundled().content_hash);

    // Every entry's number, id and English text, against the texts sentence-transformers
    // embedded (raw there, entities decoded here).
    let by_num: std::collections::HashMap<usize, &tweetsim::corpus::Tweet> =
        c.tweets.iter().map(|t| (t.num, t)).collect();
    let refs = reference_texts();
    assert_eq!(refs.len(), 680);
    for r in &refs {
        let t = match by_num.get(&r.num) {
            Some(t) => *t,
            None => {
                // A merged repeat: its id is kept under the earlier entry number.
                let m = c
                    .merges
                    .iter()
                    .find(|m| m.dropped == r.num)
                    .expect("repeat is merged");
                by_num[&m.kept]
            }
        };
        assert_eq!(t.id.to_string(), r.id, "entry {}", r.num);
        assert_eq!(t.text, decode_entities(&r.text), "entry {}", r.num);
        assert!(t.url.ends_with(&format!("/status/{}", r.id)));
        assert_eq!(t.author, "@karpathy");
        assert!(t.date.is_some());
    }

    let s = c.stats();
    assert_eq!(s.replies, 460); // 478 of the 680 entries; 460 of the 657 unique tweets
    assert_eq!(s.first_date, NaiveDate::from_ymd_opt(2022, 1, 3));
    assert_eq!(s.last_date, NaiveDate::from_ymd_opt(2022, 12, 30));
    assert_eq!(s.with_translation, 656);

    let first = &by_num[&1];
    assert_eq!(first.id, 1478128891520688128);
    assert_eq!(first.text, "github copilot but for art ✨");
    assert_eq!(
        (
            first.metrics.likes,
            first.metrics.retweets,
            first.metrics.replies,
            first.metrics.quotes,
            first.metrics.views,
            first.metrics.bookmarks
        ),
        (889, 27, 51, 9, 0, 33)
    );
    assert!(!first.is_reply);
    assert!(by_num[&2].is_reply);
    assert_eq!(c.tweets.iter().filter(|t| t.metrics.views > 0).count(), 33);
}

#[test]
fn the_three_special_entries() {
    let c = Corpus::bundled();
    let t = |num| c.tweets.iter().find(|t| t.num == num).unwrap();
    // #246: two English paragraphs, a thousands separator in its counts.
    let e246 = t(246);
    assert!(e246
        .text
        .starts_with("1) What is LaMDA and What Does it Want?"));
    assert!(e246
        .text
        .contains("https://t.co/fgpHpdPTRa\n\nWhat can be said with confidence"));
    assert_eq!(e246.metrics.likes, 3122);
    assert!(e246
        .translation
        .as_deref()
        .unwrap()
        .starts_with("1）LaMDA 是什么"));
    // #555: no translation at all.
    let e555 = t(555);
    assert!(e555.text.starts_with("@ArtirKel from my own experience"));
    assert_eq!(e555.translation, None);
    // #565: a blank line inside the English text, two translated paragraphs.
    let e565 = t(565);
    assert!(e565
        .text
        .ends_with("daily life.\n\nUnderfitting is underrated."));
    assert_eq!(
        e565.translation.as_deref().unwrap().split("\n\n").count(),
        2
    );
    // #537: non-Latin symbols in the English part stay English.
    assert!(t(537).text.contains('ツ'));
}

#[test]
fn html_entities_are_decoded() {
    let c = Corpus::bundled();
    assert!(c
        .tweets
        .iter()
        .all(|t| !t.text.contains("&amp;") && !t.text.contains("&gt;")));
    let t = c.tweets.iter().find(|t| t.num == 402).unwrap();
    assert!(t.text.contains("\n> We"), "{}", t.text);
}

#[test]
fn archive_tweets_js() {
    let c = Corpus::load(&data("archive/tweets.js"), None).unwrap();
    assert_eq!(c.format, Format::Archive);
    assert_eq!(c.tweets.len(), 3);
    let t = &c.tweets[0];
    assert_eq!(t.id, 1052322330397974528);
    assert_eq!(t.date, NaiveDate::from_ymd_opt(2018, 10, 17));
    assert_eq!((t.metrics.likes, t.metrics.retweets), (1204, 87));
    assert_eq!(
        t.text,
        "Training neural nets is a leaky abstraction & you should know what happens under the hood"
    );
    assert_eq!(t.url, "https://x.com/i/status/1052322330397974528");
    assert!(!t.is_reply);
    assert!(c.tweets[1].is_reply);
    assert!(c.tweets[1].text.contains("model > 90%"));
}

fn load_err(name: &str, content: &str, format: Option<Format>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    let e = Corpus::load(&path, format).unwrap_err().to_string();
    e.replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn malformed_archive_names_the_line() {
    let good = std::fs::read_to_string(data("archive/tweets.js")).unwrap();
    let e = load_err(
        "tweets.js",
        &good.replace("Wed Oct 17 21:07:45 +0000 2018", "2018-10-17"),
        None,
    );
    assert!(
        e.starts_with("DIR/tweets.js:2: tweet #1: bad created_at '2018-10-17'"),
        "{e}"
    );
    let e = load_err(
        "tweets.js",
        &good.replace(
            "\"favorite_count\" : \"15\"",
            "\"favorite_count\" : \"lots\"",
        ),
        None,
    );
    assert!(
        e.starts_with("DIR/tweets.js:37: tweet #2: bad count 'lots'"),
        "{e}"
    );
    let e = load_err(
        "tweets.js",
        &good.replace("\"full_text\" : \"Self", "\"no_text\" : \"Self"),
        None,
    );
    assert!(e.contains("tweet #3: missing field `full_text`"), "{e}");
    let e = load_err("tweets.js", &good[..good.len() / 2], None);
    assert!(
        e.starts_with("DIR/tweets.js:") && e.contains("invalid JSON"),
        "{e}"
    );
    let e = load_err("tweets.js", "[]", None);
    assert!(e.contains("expected 'window.YTD.tweets.part0 = ['"), "{e}");
    let e = load_err("tweets.js", "window.YTD.tweets.part0 = []", None);
    assert_eq!(e, "DIR/tweets.js:0: no tweets found (read as archive)");
}

#[test]
fn jsonl_and_format_override() {
    let body = "{\"id\": \"10\", \"text\": \"one\", \"date\": \"2022-05-01\"}\n{\"id\": 11, \"text\": \"two &amp; three\"}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.data");
    std::fs::write(&path, body).unwrap();
    assert!(Corpus::load(&path, None)
        .unwrap_err()
        .to_string()
        .contains("pass --format"));
    let c = Corpus::load(&path, Some(Format::Jsonl)).unwrap();
    assert_eq!(c.tweets.len(), 2);
    assert_eq!(c.tweets[1].text, "two & three");
    let e = load_err("t.jsonl", &format!("{body}not json\n"), None);
    assert!(e.starts_with("DIR/t.jsonl:3: invalid JSON line"), "{e}");
}

#[test]
fn malformed_bundled_files_name_file_and_line() {
    let good = Corpus::bundled_text();
    // Entry 002's date line is line 20 of the file.
    let line_of = |needle: &str| good[..good.find(needle).unwrap()].lines().count() + 1;
    let e = load_err(
        "c.txt",
        &good.replacen(
            "时间: 2022-01-03\n链接: https://x.com/karpathy/status/1478131123746062336",
            "时间: 2022-01-32\n链接: https://x.com/karpathy/status/1478131123746062336",
            1,
        ),
        None,
    );
    let n = line_of("时间: 2022-01-03\n链接: https://x.com/karpathy/status/1478131123746062336");
    assert_eq!(
        e,
        format!("DIR/c.txt:{n}: entry 002: bad date '2022-01-32', expected YYYY-MM-DD")
    );
    let e = load_err("c.txt", &good.replacen("Likes: 889", "Likes: 8x9", 1), None);
    assert_eq!(
        e,
        format!(
            "DIR/c.txt:{}: entry 001: bad number '8x9' for Likes",
            line_of("互动: Likes: 889")
        )
    );
    let e = load_err("c.txt", &good.replacen("作者: @karpathy\n", "", 1), None);
    assert!(e.contains(": entry 001: expected '作者: @handle'"), "{e}");
    // Truncated: the file ends inside the last entry's headers.
    let cut = &good[..good.rfind("互动:").unwrap()];
    let e = load_err("c.txt", cut, None);
    assert!(
        e.contains("entry 680: expected '互动:") && e.contains("truncated"),
        "{e}"
    );
    let e = load_err("c.txt", "", None);
    assert_eq!(e, "DIR/c.txt:0: no '### NNN' entry headers found");
    let e = Corpus::load(Path::new("no/such/corpus.txt"), None)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("no/such/corpus.txt: No such file"), "{e}");
}
