//! Query strings, decoded strictly: each parameter at most once, only the ones an endpoint
//! takes (a typo such as `limit=5` is an error, not a silently ignored filter), and every
//! value valid UTF-8, so each mistake is answered with the name of the parameter at fault.

use std::collections::HashMap;

use chrono::NaiveDate;
use percent_encoding::percent_decode;

use super::error::ApiError;
use crate::index::Filter;
use crate::search::Mode;

/// The parameters of one request, by name.
#[derive(Debug, Default)]
pub struct Params(HashMap<&'static str, String>);

impl Params {
    /// Parses `raw` (the part after `?`), accepting only the names in `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&'static str]) -> Result<Params, ApiError> {
        let mut out = HashMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            // A bare name (`?no_replies`) is a flag set to true.
            let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
            let key = decode(k, "parameter name")?;
            let Some(&name) = allowed.iter().find(|&&a| a == key) else {
                let takes = match allowed {
                    [] => "this endpoint takes no parameters".to_string(),
                    _ => format!("this endpoint takes: {}", allowed.join(", ")),
                };
                return Err(ApiError::bad(
                    &key,
                    format!("unknown parameter '{key}'; {takes}"),
                ));
            };
            let value = decode(v, name)?;
            if out.insert(name, value).is_some() {
                return Err(ApiError::bad(name, format!("'{name}' is given twice")));
            }
        }
        Ok(Params(out))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A count in `1..=max`, or `default`.
    pub fn count(&self, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(default.min(max));
        };
        match v.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad(
                name,
                format!("'{name}' must be a whole number from 1 to {max}, not '{v}'"),
            )),
        }
    }

    /// `true`/`false` (also `1`/`0`, or the bare name for true). An empty value is an
    /// error, not a guess either way.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(ApiError::bad(
                name,
                format!("'{name}' must be true or false, not '{v}'"),
            )),
        }
    }

    pub fn mode(&self) -> Result<Mode, ApiError> {
        match self.get("mode") {
            None => Ok(Mode::default()),
            Some("dense") => Ok(Mode::Dense),
            Some("lexical") => Ok(Mode::Lexical),
            Some("hybrid") => Ok(Mode::Hybrid),
            Some(v) => Err(ApiError::bad(
                "mode",
                format!("'mode' must be dense, lexical or hybrid, not '{v}'"),
            )),
        }
    }

    /// `since`, `until`, `no_replies` and `min_likes`, checked together.
    pub fn filter(&self) -> Result<Filter, ApiError> {
        let date = |name: &str| -> Result<Option<NaiveDate>, ApiError> {
            self.get(name)
                .map(|v| {
                    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                        ApiError::bad(
                            name,
                            format!("'{name}' must be a date like 2022-06-30, not '{v}'"),
                        )
                    })
                })
                .transpose()
        };
        let (since, until) = (date("since")?, date("until")?);
        if let (Some(s), Some(u)) = (since, until) {
            if s > u {
                return Err(ApiError::bad(
                    "since",
                    format!("'since' {s} is after 'until' {u}"),
                ));
            }
        }
        let min_likes = match self.get("min_likes") {
            None => 0,
            Some(v) => v.trim().parse::<u64>().map_err(|_| {
                ApiError::bad(
                    "min_likes",
                    format!("'min_likes' must be a whole number, not '{v}'"),
                )
            })?,
        };
        Ok(Filter {
            since,
            until,
            no_replies: self.flag("no_replies")?,
            min_likes,
        })
    }
}

/// Percent-decodes one part of a query string (`+` is a space, as forms send it).
fn decode(part: &str, what: &str) -> Result<String, ApiError> {
    let spaced = part.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad(what, format!("'{what}' is not valid UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `/similar` takes.
    fn allowed() -> Vec<&'static str> {
        [&["q"], super::super::api::SEARCH_PARAMS].concat()
    }

    #[test]
    fn values_are_decoded_and_checked_by_name() {
        let p = Params::parse(Some("q=tesla+autopilot%21&k=5&no_replies"), &allowed()).unwrap();
        assert_eq!(p.get("q"), Some("tesla autopilot!"));
        assert_eq!(p.count("k", 10, 100).unwrap(), 5);
        assert!(p.flag("no_replies").unwrap());
        assert_eq!(p.count("missing", 10, 100).unwrap(), 10);

        let p = Params::parse(Some("no_replies="), &allowed()).unwrap();
        assert_eq!(
            p.flag("no_replies").unwrap_err().field,
            Some("no_replies".into())
        );
        let field = |raw: &str| Params::parse(Some(raw), &allowed()).unwrap_err().field;
        assert_eq!(field("limit=5"), Some("limit".into()));
        assert_eq!(field("k=1&k=2"), Some("k".into()));
        assert_eq!(field("q=%ff%fe"), Some("q".into()));

        let p = Params::parse(Some("k=0"), &allowed()).unwrap();
        assert_eq!(p.count("k", 10, 100).unwrap_err().field, Some("k".into()));
        let p = Params::parse(Some("k=101"), &allowed()).unwrap();
        assert!(p.count("k", 10, 100).is_err());
    }

    #[test]
    fn filters_name_the_bad_bound() {
        let filter = |raw: &str| Params::parse(Some(raw), &allowed()).unwrap().filter();
        let f = filter("since=2022-03-01&until=2022-03-31&min_likes=100").unwrap();
        assert_eq!(f.since, NaiveDate::from_ymd_opt(2022, 3, 1));
        assert_eq!(f.min_likes, 100);
        assert_eq!(
            filter("since=2022-13-01").unwrap_err().field,
            Some("since".into())
        );
        assert_eq!(
            filter("since=2022-04-01&until=2022-03-01")
                .unwrap_err()
                .field,
            Some("since".into())
        );
        assert_eq!(
            filter("min_likes=-3").unwrap_err().field,
            Some("min_likes".into())
        );
        assert_eq!(
            filter("no_replies=maybe").unwrap_err().field,
            Some("no_replies".into())
        );
    }
}
