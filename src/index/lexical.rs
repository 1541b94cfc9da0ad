//! The lexical half of search: a BM25 index (tantivy) over each tweet's embedding text, with
//! English stemming, so exact names and rare terms ("Whisper", "micrograd") are found even
//! where the dense model blurs them.
//!
//! Written once per store generation into `lexical/` beside the graph (one segment, built by
//! one thread) and opened read-only; a store written before it existed gets one built in
//! memory when opened.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::query::BooleanQuery;
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use super::RowSet;

/// The folder inside a generation.
pub const DIR: &str = "lexical";
/// Our analyzer: split on non-alphanumerics, lowercase, drop English stop words (the ISO list
/// the topic keywords use too), Snowball-stem. Without the stop words, sentence queries
/// ("what does he think about …") matched every tweet with "think" or "about".
const ANALYZER: &str = "tweet_en";

fn analyzer() -> TextAnalyzer {
    use tantivy::tokenizer::{
        Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter,
    };
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            stop_words::get("en").iter().map(|w| w.to_string()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

pub struct Lexical {
    reader: IndexReader,
    text: Field,
    analyzer: TextAnalyzer,
}

fn schema() -> (Schema, Field, Field) {
    let mut b = Schema::builder();
    let text = b.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        ),
    );
    let row = b.add_u64_field("row", NumericOptions::default().set_fast());
    (b.build(), text, row)
}

/// Indexes `(row, text)` pairs into `dir` (created), or into memory when `dir` is `None`.
/// Rows left out (tombstoned tweets) are never found.
pub fn build<'a>(
    texts: impl Iterator<Item = (usize, &'a str)>,
    dir: Option<&Path>,
) -> Result<Lexical, String> {
    let (schema, text, row) = schema();
    let index = match dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            Index::create_in_dir(d, schema)
        }
        None => Ok(Index::create_in_ram(schema)),
    }
    .map_err(|e| format!("lexical index: {e}"))?;
    index.tokenizers().register(ANALYZER, analyzer());
    // One thread, one commit: one segment, rows in order.
    let mut writer = index
        .writer_with_num_threads::<TantivyDocument>(1, 50_000_000)
        .map_err(|e| format!("lexical index: {e}"))?;
    for (i, t) in texts {
        let mut doc = TantivyDocument::default();
        doc.add_text(text, t);
        doc.add_u64(row, i as u64);
        writer
            .add_document(doc)
            .map_err(|e| format!("lexical index: {e}"))?;
    }
    writer.commit().map_err(|e| format!("lexical index: {e}"))?;
    writer
        .wait_merging_threads()
        .map_err(|e| format!("lexical index: {e}"))?;
    Lexical::from_index(index)
}

impl Lexical {
    /// Opens the index a build wrote into `dir`.
    pub fn open(dir: &Path) -> Result<Lexical, String> {
        let index = Index::open_in_dir(dir).map_err(|e| format!("lexical index: {e}"))?;
        Lexical::from_index(index)
    }

    fn from_index(index: Index) -> Result<Lexical, String> {
        // Analyzers are not stored with the index: register ours on every open.
        index.tokenizers().register(ANALYZER, analyzer());
        let (_, text, _) = schema();
        if index.schema().get_field("row").is_err() || index.schema().get_field("text").is_err() {
            return Err("lexical index: unexpected schema".into());
        }
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| format!("lexical index: {e}"))?;
        let analyzer = index
            .tokenizers()
            .get(ANALYZER)
            .ok_or("lexical index: no English analyzer")?;
        Ok(Lexical {
            reader,
            text,
            analyzer,
        })
    }

    /// The best `k` rows (among `among`, if given) by BM25 for `query`, best first:
    /// `(row, score)`. Any query text is accepted (operators and quotes in it are read as
    /// words).
    pub fn search(&self, query: &str, k: usize, among: Option<&Arc<RowSet>>) -> Vec<(usize, f32)> {
        let terms = self.terms(query);
        if terms.is_empty() || k == 0 {
            return Vec::new();
        }
        // The query's stems, OR-ed: BM25 ranks by how many match and how rare they are.
        // Built from terms, not parsed, so quotes or operators in the text mean nothing.
        let q = BooleanQuery::new_multiterms_query(
            terms
                .iter()
                .map(|t| Term::from_field_text(self.text, t))
                .collect(),
        );
        let searcher = self.reader.searcher();
        // Collectors reserve room for `k` up front: never more than there are documents.
        let k = k.min(usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX));
        if k == 0 {
            return Vec::new();
        }
        let top = match among {
            Some(among) => {
                let among = Arc::clone(among);
                let collector = FilterCollector::new(
                    "row".to_string(),
                    move |row: u64| among.contains(row as usize),
                    TopDocs::with_limit(k).order_by_score(),
                );
                searcher.search(&q, &collector)
            }
            None => searcher.search(&q, &TopDocs::with_limit(k).order_by_score()),
        };
        let Ok(top) = top else {
            return Vec::new();
        };
        top.into_iter()
            .filter_map(|(score, addr)| {
                let col = searcher
                    .segment_reader(addr.segment_ord)
                    .fast_fields()
                    .u64("row")
                    .ok()?;
                col.first(addr.doc_id).map(|r| (r as usize, score))
            })
            .collect()
    }

    /// The BM25 score a tweet would get for containing each query stem once at average
    /// length: the sum of the stems' IDF. Dividing by it puts a query's lexical scores on
    /// an absolute scale (about the share of the query's information a tweet matched)
    /// instead of relative to whatever the best match happened to be.
    pub fn ideal_score(&self, query: &str) -> f32 {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as f32;
        self.terms(query)
            .iter()
            .map(|t| {
                let df = searcher
                    .doc_freq(&Term::from_field_text(self.text, t))
                    .unwrap_or(0) as f32;
                (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
            })
            .sum()
    }

    /// The distinct stems of `text` as the index sees them.
    pub fn terms(&self, text: &str) -> BTreeSet<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut out = BTreeSet::new();
        while let Some(t) = stream.next() {
            out.insert(t.text.clone());
        }
        out
    }

    /// Words of `query` whose stems occur in `text`: why a hit matched lexically.
    pub fn matched(&self, query: &str, text: &str) -> Vec<String> {
        let have = self.terms(text);
        let mut seen = BTreeSet::new();
        query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .filter(|w| self.terms(w).iter().any(|s| have.contains(s)))
            .map(str::to_lowercase)
            .filter(|w| seen.insert(w.clone()))
            .collect()
    }
}
