//! The report as one self-contained HTML page: inline SVG charts and a few lines of inline
//! script (click a point to read the tweet); no network, no external files.
//!
//! Charts: topic sizes, a topic × month timeline, a 2-D map of every tweet coloured by topic
//! (first two principal components of the embeddings), and engagement per topic.

use std::fmt::Write as _;

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use super::{projection, Report};
use crate::error::Result;
use crate::index::Store;
use crate::topics::Topics;

/// Tableau's 20 colours: distinct on screen and in print.
const PALETTE: [&str; 20] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];
const UNASSIGNED: &str = "#d0d0d0";

/// What tweets outside every topic are called.
fn rest_name(r: &Report) -> &'static str {
    if r.guided {
        "other"
    } else {
        "unassigned"
    }
}

fn color(topic: usize) -> &'static str {
    PALETTE[topic % PALETTE.len()]
}

pub fn render(report: &Report, store: &Store, topics: &Topics) -> Result<String> {
    let mut h = String::new();
    let title = format!("Topics of {}", report.corpus);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{CSS}</style></head>\n<body>\n<h1>{}</h1>\n<p class=\"summary\">{} tweets · {} {} · {}: {} ({:.1}%)</p>\n",
        text(&title),
        text(&title),
        report.tweets,
        report.topics.len(),
        if report.guided { "themes" } else { "topics" },
        rest_name(report),
        report.unassigned,
        100.0 * report.unassigned_share
    );
    h.push_str(&charts(report, store, topics)?);
    topic_tables(&mut h, report);
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body></html>\n");
    Ok(h)
}

/// The four charts as HTML sections, without the page around them: the report page shows
/// them, and so does the search page of `tweetsim serve`. Each topic's bars carry
/// `data-topic`, for a page to react to a click.
pub fn charts(report: &Report, store: &Store, topics: &Topics) -> Result<String> {
    let mut h = String::new();
    sizes_chart(&mut h, report);
    timeline_chart(&mut h, report);
    map_chart(&mut h, report, store, topics)?;
    engagement_chart(&mut h, report);
    Ok(h)
}

fn section(h: &mut String, title: &str, note: &str) {
    let _ = writeln!(
        h,
        "<section><h2>{}</h2><p class=\"note\">{}</p>",
        text(title),
        text(note)
    );
}

fn sizes_chart(h: &mut String, r: &Report) {
    section(h, "Topic sizes", "Tweets per topic; hover for the share.");
    let bars: Vec<Bar> = r
        .topics
        .iter()
        .map(|t| Bar {
            topic: t.id,
            label: format!("{}. {}", t.id, t.label),
            value: t.size as f64,
            tooltip: format!("{} ({:.1}%)", super::tweets(t.size), 100.0 * t.share),
            caption: t.size.to_string(),
        })
        .collect();
    bar_chart(h, "chart-sizes", &bars, 60.0);
}

/// One bar of a horizontal bar chart.
struct Bar {
    topic: usize,
    label: String,
    value: f64,
    tooltip: String,
    caption: String,
}

/// Horizontal bars, one row per topic, scaled to the largest value; `caption_room` is the width
/// kept free right of the longest bar for its caption.
fn bar_chart(h: &mut String, id: &str, bars: &[Bar], caption_room: f64) {
    let (row, left, width) = (24.0, 300.0, 900.0);
    let max = bars.iter().map(|b| b.value).fold(1.0, f64::max);
    let height = row * bars.len() as f64 + 10.0;
    let _ = writeln!(h, "<svg id=\"{id}\" class=\"chart\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">");
    for (i, b) in bars.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let w = (width - left - caption_room) * b.value / max;
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"bar\" data-topic=\"{}\" x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect><text x=\"{:.1}\" y=\"{}\">{}</text>",
            left - 8.0,
            y + 15.0,
            text(&b.label),
            b.topic,
            row - 6.0,
            color(b.topic),
            text(&b.tooltip),
            left + w + 6.0,
            y + 15.0,
            text(&b.caption)
        );
    }
    h.push_str("</svg></section>\n");
}

fn timeline_chart(h: &mut String, r: &Report) {
    section(
        h,
        "Topics over time",
        "Tweets per topic and month; darker = more.",
    );
    let months: Vec<&String> = r
        .topics
        .first()
        .map(|t| t.monthly.keys().collect())
        .unwrap_or_default();
    let (row, cell, left) = (24.0, 52.0, 300.0);
    let width = left + cell * months.len() as f64 + 10.0;
    let height = row * (r.topics.len() + 1) as f64 + 10.0;
    let max = r
        .topics
        .iter()
        .flat_map(|t| t.monthly.values())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let _ = writeln!(h, "<svg id=\"chart-timeline\" class=\"chart\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">");
    for (j, m) in months.iter().enumerate() {
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"16\" text-anchor=\"middle\">{}</text>",
            left + cell * (j as f64 + 0.5),
            text(m)
        );
    }
    for (i, t) in r.topics.iter().enumerate() {
        let y = row * (i + 1) as f64 + 2.0;
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + 15.0,
            text(&format!("{}. {}", t.id, t.label))
        );
        for (j, (m, &c)) in t.monthly.iter().enumerate() {
            let _ = write!(
                h,
                "<rect class=\"cell\" x=\"{:.1}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{}\" fill-opacity=\"{:.3}\"><title>{}: {c} tweets in {}</title></rect>",
                left + cell * j as f64 + 1.0,
                cell - 2.0,
                row - 4.0,
                color(t.id),
                0.06 + 0.94 * c as f64 / max,
                text(&t.label),
                text(m)
            );
        }
        h.push('\n');
    }
    h.push_str("</svg></section>\n");
}

fn map_chart(h: &mut String, r: &Report, store: &Store, topics: &Topics) -> Result<()> {
    section(h, "Map of all tweets", "First two principal components of the embeddings, coloured by topic (grey: unassigned). Hover or click a point to read the tweet.");
    let tweets = store.tweets()?;
    let xy = projection::pca_2d(&store.vectors(), store.dim());
    let (w, hgt, pad) = (900.0f32, 600.0f32, 20.0f32);
    let (minx, maxx) = xy
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (miny, maxy) = xy
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let sx = (w - 2.0 * pad) / (maxx - minx).max(1e-6);
    let sy = (hgt - 2.0 * pad) / (maxy - miny).max(1e-6);
    let _ = writeln!(h, "<div class=\"map\"><svg id=\"chart-map\" class=\"chart\" width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\">");
    for (row, &(x, y)) in xy.iter().enumerate() {
        let t = &tweets[row];
        let (fill, label) = match topics.assignment[row] {
            Some(k) => (color(k), r.topics[k].label.as_str()),
            None => (UNASSIGNED, rest_name(r)),
        };
        let date = t.date.map(|d| d.to_string()).unwrap_or_default();
        let _ = writeln!(
            h,
            "<circle class=\"pt\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{fill}\" data-topic=\"{}\" data-date=\"{}\" data-likes=\"{}\" data-url=\"{}\"><title>{} · {} · {} likes\n{}</title></circle>",
            pad + (x - minx) * sx,
            hgt - pad - (y - miny) * sy,
            attr(label),
            attr(&date),
            t.metrics.likes,
            attr(super::web_url(&t.url).unwrap_or_default()),
            text(&date),
            text(label),
            t.metrics.likes,
            text(&t.text)
        );
    }
    h.push_str("</svg><div id=\"tweet\" class=\"tweet\">Click a point to read the tweet.</div></div>\n<p class=\"legend\">");
    for t in &r.topics {
        let _ = write!(
            h,
            "<span><i style=\"background:{}\"></i>{}. {}</span> ",
            color(t.id),
            t.id,
            text(&t.label)
        );
    }
    let _ = writeln!(
        h,
        "<span><i style=\"background:{UNASSIGNED}\"></i>{}</span></p></section>",
        rest_name(r)
    );
    Ok(())
}

fn engagement_chart(h: &mut String, r: &Report) {
    section(
        h,
        "Engagement per topic",
        "Median likes per tweet (bar) and total likes (number).",
    );
    let bars: Vec<Bar> = r
        .topics
        .iter()
        .map(|t| Bar {
            topic: t.id,
            label: format!("{}. {}", t.id, t.label),
            value: t.likes_median,
            tooltip: format!(
                "median {} likes, total {}; median {} retweets, total {}",
                t.likes_median, t.likes_total, t.retweets_median, t.retweets_total
            ),
            caption: format!("{} median · {} total", t.likes_median, t.likes_total),
        })
        .collect();
    bar_chart(h, "chart-engagement", &bars, 160.0);
}

fn topic_tables(h: &mut String, r: &Report) {
    h.push_str("<section><h2>Topics</h2>\n");
    for t in &r.topics {
        let kws: Vec<&str> = t.keywords.iter().map(|k| k.term.as_str()).collect();
        let _ = writeln!(
            h,
            "<h3><i style=\"background:{}\"></i>{}. {}</h3>\n<table><tr><th>tweets</th><td>{} ({:.1}%)</td><th>dates</th><td>{} … {}</td></tr><tr><th>likes</th><td>{} total, median {}</td><th>retweets</th><td>{} total, median {}</td></tr><tr><th>keywords</th><td colspan=\"3\">{}</td></tr></table>",
            color(t.id),
            t.id,
            text(&t.label),
            t.size,
            100.0 * t.share,
            t.first_date.as_deref().unwrap_or("-"),
            t.last_date.as_deref().unwrap_or("-"),
            t.likes_total,
            t.likes_median,
            t.retweets_total,
            t.retweets_median,
            text(&kws.join(", "))
        );
        h.push_str("<ul>");
        for e in &t.representatives {
            let _ = write!(
                h,
                "<li>{} {}</li>",
                link(&e.url, e.date.as_deref().unwrap_or("-")),
                text(&e.text)
            );
        }
        if let Some(m) = &t.most_liked {
            let _ = write!(
                h,
                "<li class=\"top\">most liked ({} likes): {} {}</li>",
                m.likes,
                link(&m.url, m.date.as_deref().unwrap_or("-")),
                text(&m.text)
            );
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px}h3{font-size:15px;margin:22px 0 6px}\
.summary,.note{color:#555}.chart text{font-size:12px;fill:#333}.pt{stroke:#fff;stroke-width:.6;cursor:pointer}\
.pt:hover,.pt.on{stroke:#000;stroke-width:1.5}.map{display:flex;gap:12px;align-items:flex-start}\
.tweet{width:260px;font-size:13px;border:1px solid #ddd;border-radius:6px;padding:10px;white-space:pre-wrap}\
.legend span{display:inline-block;margin:2px 10px 2px 0;font-size:12px}\
i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}\
table{border-collapse:collapse;font-size:13px}th{text-align:left;color:#666;font-weight:normal;padding:2px 8px 2px 0}\
td{padding:2px 16px 2px 0}li{margin:4px 0}li.top{color:#555}";

/// Click-to-read on the map, and a render check: after layout, each chart's box and element
/// count go into `data-rendered` on <body>, which a headless browser test reads back.
const SCRIPT: &str = r#"
const panel = document.getElementById('tweet');
let on = null;
document.querySelectorAll('#chart-map .pt').forEach(p => p.addEventListener('click', () => {
  if (on) on.classList.remove('on');
  on = p; p.classList.add('on');
  const t = p.querySelector('title').textContent.split('\n');
  panel.textContent = '';
  const head = document.createElement('b'); head.textContent = t[0];
  const body = document.createElement('p'); body.textContent = t.slice(1).join('\n');
  panel.append(head, body);
  if (p.dataset.url) {
    const link = document.createElement('a'); link.href = p.dataset.url; link.textContent = 'open on X';
    panel.append(link);
  }
}));
const counts = {sizes: 'rect', timeline: 'rect', map: 'circle', engagement: 'rect'};
document.body.dataset.rendered = Object.entries(counts).map(([id, el]) => {
  const svg = document.getElementById('chart-' + id);
  const box = svg.getBBox();
  return id + ':' + svg.querySelectorAll(el).length + ':' + (box.width > 0 && box.height > 0 ? 'drawn' : 'empty');
}).join(',');
"#;

/// `<a href>` around `label` for a web link; the label alone for anything else.
fn link(url: &str, label: &str) -> String {
    match super::web_url(url) {
        Some(u) => format!("<a href=\"{}\">{}</a>", attr(u), text(label)),
        None => text(label).into_owned(),
    }
}
