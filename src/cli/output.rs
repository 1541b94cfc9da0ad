//! Rendering results for people (tables wrapped to the terminal) and for programs (JSON).

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use tweetsim::corpus::{Corpus, Tweet};
use tweetsim::index::Store;
use tweetsim::report::terminal_safe;
use tweetsim::search::Ranked;

pub fn corpus_summary(c: &Corpus, json: bool) -> Result<()> {
    let s = c.stats();
    let mut out = std::io::stdout().lock();
    if json {
        #[derive(Serialize)]
        struct Summary<'a> {
            source: &'a str,
            format: String,
            #[serde(flatten)]
            stats: &'a tweetsim::corpus::Stats,
            merged_ids: Vec<String>,
        }
        let merged_ids = c.merges.iter().map(|m| m.id.to_string()).collect();
        serde_json::to_writer(
            &mut out,
            &Summary {
                source: &c.source,
                format: c.format.to_string(),
                stats: &s,
                merged_ids,
            },
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let range = match (s.first_date, s.last_date) {
        (Some(a), Some(b)) => format!("{a} … {b}"),
        _ => "no dates".into(),
    };
    writeln!(out, "corpus       {} ({} format)", c.source, c.format)?;
    writeln!(out, "entries      {}", s.entries)?;
    writeln!(out, "unique       {} tweets", s.unique)?;
    writeln!(out, "merged       {} repeated status ids", s.merged)?;
    if s.without_text > 0 {
        writeln!(out, "no text      {} records, left out", s.without_text)?;
    }
    writeln!(
        out,
        "replies      {} ({} originals)",
        s.replies,
        s.unique - s.replies
    )?;
    writeln!(out, "translated   {}", s.with_translation)?;
    writeln!(out, "dates        {range}")?;
    if !c.merges.is_empty() {
        let pairs: Vec<String> = c
            .merges
            .iter()
            .map(|m| format!("{:03}={:03}", m.kept, m.dropped))
            .collect();
        let text = format!("merged entries: {}", pairs.join(" "));
        for line in textwrap::wrap(
            &text,
            textwrap::Options::new(width()).subsequent_indent("  "),
        ) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// One JSON object per hit, one per line; `explain` (the query text) adds the matched words.
pub fn hits_json(store: &Store, hits: &[Ranked], explain: Option<&str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for row in tweetsim::report::hit_records(store, hits, explain)? {
        serde_json::to_writer(&mut out, &row)?;
        writeln!(out)?;
    }
    Ok(())
}

/// Rank, score, date, likes, the text wrapped to the terminal, then the link; `explain`
/// (the query text) adds a line with the dense and BM25 scores and the matched words.
pub fn hits_table(
    store: &Store,
    hits: &[Ranked],
    header: &str,
    explain: Option<&str>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", one_line(header, width()))?;
    writeln!(out)?;
    writeln!(
        out,
        "{:>3} {:<5} {:<10} {:>7}  tweet",
        "#", "score", "date", "likes"
    )?;
    // Width of "  1 0.598 2022-07-13  23,799  ": continuation lines start under the text.
    const INDENT: usize = 30;
    let text_width = width().saturating_sub(INDENT).max(30);
    let pad = " ".repeat(INDENT);
    for (i, h) in hits.iter().enumerate() {
        let t = store.tweet(h.row)?;
        // No hyphenation: it would split links and handles at '-' and '/'.
        let opts =
            textwrap::Options::new(text_width).word_splitter(textwrap::WordSplitter::NoHyphenation);
        let text = terminal_safe(&t.text);
        let lines = textwrap::wrap(&text, opts);
        let first = lines.first().map(|l| l.as_ref()).unwrap_or("");
        writeln!(
            out,
            "{:>3} {:.3} {:<10} {:>7}  {first}",
            i + 1,
            h.score,
            date(&t),
            thousands(t.metrics.likes)
        )?;
        for l in lines.iter().skip(1) {
            writeln!(out, "{pad}{l}")?;
        }
        let reply = if t.is_reply { "  (reply)" } else { "" };
        // One line, whatever the corpus put in the field.
        writeln!(out, "{pad}{}{reply}", one_line(&t.url, usize::MAX))?;
        if let Some(q) = explain {
            let matched = store.lexical().matched(q, &t.embedding_text());
            let bm25 = h.lexical.map_or("-".into(), |s| format!("{s:.2}"));
            let words = if matched.is_empty() {
                "no query word".into()
            } else {
                matched.join(", ")
            };
            let thread = h.thread.map_or(String::new(), |(part, lift)| {
                format!(" · thread +{lift:.3} from {}", store.id(part))
            });
            writeln!(
                out,
                "{pad}[dense {:.3} · bm25 {bm25} · matched: {words}{thread}]",
                h.dense
            )?;
        }
        if !h.duplicates.is_empty() {
            let n = h.duplicates.len();
            let s = if n == 1 { "" } else { "s" };
            writeln!(
                out,
                "{pad}(+{n} near-duplicate{s} folded in; --no-collapse lists them)"
            )?;
        }
    }
    Ok(())
}

pub fn date(t: &Tweet) -> String {
    t.date.map_or_else(|| "-".into(), |d| d.to_string())
}

/// The text on one line, cut to `max` characters, safe for a terminal.
pub fn one_line(text: &str, max: usize) -> String {
    let flat = terminal_safe(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    match flat.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Terminal width, or 100 columns when output is not a terminal.
pub fn width() -> usize {
    terminal_size_width().unwrap_or(100).clamp(60, 160)
}

fn terminal_size_width() -> Option<usize> {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal().then(textwrap::termwidth)
}

/// Near-duplicate groups: for people, each group's tweets with their best pair score; for
/// programs, one JSON object per group.
pub fn dup_groups(store: &Store, groups: &[tweetsim::dups::Group], json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let tweets = store.tweets()?;
    for (i, g) in groups.iter().enumerate() {
        if json {
            let obj = serde_json::json!({
                "group": i + 1,
                "ids": g.rows.iter().map(|&r| tweets[r].id.to_string()).collect::<Vec<_>>(),
                "pairs": g.pairs.iter().map(|&(a, b, s)| serde_json::json!({
                    "a": tweets[a].id.to_string(), "b": tweets[b].id.to_string(), "cosine": s,
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{obj}")?;
            continue;
        }
        let best = g.pairs.first().map_or(0.0, |p| p.2);
        writeln!(
            out,
            "group {} — {} tweets, best pair cosine {best:.3}",
            i + 1,
            g.rows.len()
        )?;
        for &r in &g.rows {
            let t = &tweets[r];
            writeln!(
                out,
                "  {} {:<10} {}",
                t.id,
                date(t),
                one_line(&t.text, width().saturating_sub(34).max(30))
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1423), "1,423");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\nb  c", 10), "a b c");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }
}
