//! Token roles (the MDU paper's analysis): every answer token is **in-context**, **structural** or
//! **stored-knowledge**, decided by the word it belongs to.
//!
//! The rule, in order:
//! 1. A token without a letter or digit (punctuation, spaces) is *structural*.
//! 2. A token whose word occurs in the prompt (the question) is *in-context*.
//! 3. A token whose word occurs in at least `structural_share` (default 30 %) of the split's gold
//!    answers is *structural*: the answers' shared template ("was born in", "is known for").
//! 4. Every other token is *stored-knowledge*: what only the model's memory can supply.
//!
//! Words are maximal runs of letters and digits, compared lower-case. A token belongs to the first
//! word its text overlaps. Special tokens (end of answer, padding) have no role. Limits: a word
//! split across tokens gives every piece the word's role; a fact that happens to repeat a word of
//! the question counts as in-context; the share is taken over the traced split only. An override
//! file (`--roles FILE`, JSON `{"word": "structural", …}`) sets the role of any word, after the rule.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// What an answer token is, by the rule of the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    StoredKnowledge,
    InContext,
    Structural,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::StoredKnowledge, Role::InContext, Role::Structural];

    pub fn name(self) -> &'static str {
        match self {
            Role::StoredKnowledge => "stored-knowledge",
            Role::InContext => "in-context",
            Role::Structural => "structural",
        }
    }

    /// The paper's relative change of the mean KL during MDU for this role (its §5 analysis).
    pub fn paper_change_percent(self) -> f64 {
        match self {
            Role::StoredKnowledge => -20.6,
            Role::InContext => 1.4,
            Role::Structural => -3.8,
        }
    }
}

/// Default share of a split's answers a word must occur in to be structural.
pub const STRUCTURAL_SHARE: f64 = 0.3;

/// The split-wide facts the rule needs: each word's share of the gold answers, and overrides.
#[derive(Clone, Debug, Default)]
pub struct RoleRule {
    /// Words occurring in at least the structural share of the answers.
    structural: HashSet<String>,
    overrides: HashMap<String, Role>,
}

impl RoleRule {
    /// The rule for a split whose gold answers are `answers`.
    pub fn for_answers<'a>(answers: impl IntoIterator<Item = &'a str>, share: f64) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut n = 0usize;
        for answer in answers {
            n += 1;
            let distinct: HashSet<String> = words(answer).into_iter().map(|w| w.2).collect();
            for w in distinct {
                *counts.entry(w).or_default() += 1;
            }
        }
        let structural = counts
            .into_iter()
            .filter(|(_, c)| n > 0 && *c as f64 >= share * n as f64)
            .map(|(w, _)| w)
            .collect();
        Self {
            structural,
            overrides: HashMap::new(),
        }
    }

    /// Adds the overrides of a JSON file `{"word": "in-context" | "structural" | "stored-knowledge"}`.
    pub fn with_overrides_file(mut self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let map: HashMap<String, Role> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: expected a JSON object of word → \"in-context\", \"structural\" or \"stored-knowledge\"",
                path.display()
            )
        })?;
        self.overrides
            .extend(map.into_iter().map(|(w, r)| (w.to_lowercase(), r)));
        Ok(self)
    }

    /// The role of each token of an answer, given its pieces (`None` for special tokens) and the
    /// prompt's text.
    pub fn roles(&self, pieces: &[Option<String>], prompt: &str) -> Vec<Option<Role>> {
        let prompt_words: HashSet<String> = words(prompt).into_iter().map(|w| w.2).collect();
        // The answer's text and where each piece sits in it.
        let mut text = String::new();
        let spans: Vec<Option<(usize, usize)>> = pieces
            .iter()
            .map(|p| {
                p.as_ref().map(|p| {
                    let start = text.len();
                    text.push_str(p);
                    (start, text.len())
                })
            })
            .collect();
        let answer_words = words(&text);
        spans
            .iter()
            .map(|span| {
                let (start, end) = (*span)?;
                let word = answer_words
                    .iter()
                    .find(|(ws, we, _)| *ws < end && *we > start)
                    .map(|w| &w.2);
                let Some(word) = word else {
                    return Some(Role::Structural);
                };
                let rule = if prompt_words.contains(word) {
                    Role::InContext
                } else if self.structural.contains(word) {
                    Role::Structural
                } else {
                    Role::StoredKnowledge
                };
                Some(*self.overrides.get(word).unwrap_or(&rule))
            })
            .collect()
    }
}

/// Maximal runs of letters and digits in `text`: (start byte, end byte, lower-case word).
fn words(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i, text[s..i].to_lowercase()));
                start = None;
            }
            _ => {}
        }
    }
    out
}
