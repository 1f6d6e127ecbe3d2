//! TOFU-format question–answer files: a JSON array or JSON lines of objects with `question`,
//! `answer` and optionally `paraphrased_answer` and `perturbed_answer` (a list). Errors name the file
//! and the line.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QaItem {
    pub question: String,
    pub answer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paraphrased_answer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perturbed_answer: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {reason}")]
    Line {
        file: String,
        line: usize,
        reason: String,
    },
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
}

/// Reads a JSON array or JSON-lines file of QA items.
pub fn read_qa_file(path: &Path) -> Result<Vec<QaItem>, DataError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        file: file.clone(),
        source,
    })?;
    let items = if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| DataError::Line {
                file: file.clone(),
                line: e.line(),
                reason: format!("invalid JSON: {e}"),
            })?;
        // Line numbers of array elements are not kept; report the element's position instead.
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_item(v, &file, i + 1, "item"))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let mut items = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| DataError::Line {
                    file: file.clone(),
                    line: i + 1,
                    reason: format!("invalid JSON: {e}"),
                })?;
            items.push(parse_item(value, &file, i + 1, "line")?);
        }
        items
    };
    if items.is_empty() {
        return Err(DataError::File {
            file,
            reason: "no question–answer items".into(),
        });
    }
    Ok(items)
}

fn parse_item(
    value: serde_json::Value,
    file: &str,
    n: usize,
    unit: &str,
) -> Result<QaItem, DataError> {
    let err = |reason: String| {
        let reason = if unit == "item" {
            format!("item {n}: {reason}")
        } else {
            reason
        };
        DataError::Line {
            file: file.to_string(),
            line: if unit == "line" { n } else { 0 },
            reason,
        }
    };
    let obj = value
        .as_object()
        .ok_or_else(|| err("expected a JSON object".into()))?;
    for key in ["question", "answer"] {
        match obj.get(key) {
            Some(serde_json::Value::String(_)) => {}
            Some(other) => {
                return Err(err(format!(
                    "field `{key}` must be a string, found {other}"
                )))
            }
            None => return Err(err(format!("missing field `{key}`"))),
        }
    }
    serde_json::from_value(value).map_err(|e| err(e.to_string()))
}

/// Writes JSON lines atomically (temporary file, then rename).
pub fn write_jsonl(path: &Path, items: &[QaItem]) -> Result<(), DataError> {
    let file = path.display().to_string();
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item).expect("QaItem serialises"));
        text.push('\n');
    }
    write_atomic(path, text.as_bytes()).map_err(|source| DataError::Io { file, source })
}

/// Writes a file through a temporary sibling and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
