//! Italian and English labels for the codes that indicators publish
//! (`F` → "Donne" / "Women"), read from `queries/codes.toml`.
//!
//! Owns code → label lookup; a code without a label is shown as itself. It
//! must not change what a result contains.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{IndicatorError, Lang};

/// Labels by dimension, then by code: `[sex] F = ["Donne", "Women"]`. The
/// `[any]` table applies to every dimension (e.g. `_T` = total).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct CodeLabels {
    by_dimension: BTreeMap<String, BTreeMap<String, (String, String)>>,
}

impl CodeLabels {
    /// Reads the labels file; a missing file means no labels.
    pub fn load(path: &Path) -> Result<Self, IndicatorError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(IndicatorError::Directory {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        toml::from_str(&text).map_err(|e| IndicatorError::Parse {
            path: path.to_path_buf(),
            line: e
                .span()
                .map_or(1, |s| text[..s.start].lines().count().max(1)),
            message: e.message().to_string(),
        })
    }

    /// The label of `code` in `dimension`, or the code itself.
    pub fn label<'a>(&'a self, dimension: &str, code: &'a str, lang: Lang) -> &'a str {
        let found = self
            .by_dimension
            .get(dimension)
            .and_then(|codes| codes.get(code))
            .or_else(|| {
                self.by_dimension
                    .get("any")
                    .and_then(|codes| codes.get(code))
            });
        match (found, lang) {
            (Some((it, _)), Lang::It) => it,
            (Some((_, en)), Lang::En) => en,
            (None, _) => code,
        }
    }
}
