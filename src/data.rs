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
    /// The question reworded (TOFU's perturbed files); the leakage probe asks it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paraphrased_question: Option<String>,
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

/// The largest question–answer file read, in bytes (TOFU's largest split is about 1 MB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// The largest line of a JSON-lines file, in bytes (an item with all its perturbed answers is a
/// few kilobytes).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// The largest text field of an item, in bytes.
pub const MAX_FIELD_BYTES: usize = 64 << 10;

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Reads a JSON array or JSON-lines file of QA items. Files over [`MAX_FILE_BYTES`] and lines
/// over [`MAX_LINE_BYTES`] are refused before they are parsed; text fields over
/// [`MAX_FIELD_BYTES`] are refused by name.
pub fn read_qa_file(path: &Path) -> Result<Vec<QaItem>, DataError> {
    let file = path.display().to_string();
    let size = std::fs::metadata(path)
        .map_err(|source| DataError::Io {
            file: file.clone(),
            source,
        })?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(DataError::File {
            file,
            reason: format!(
                "the file is {}; a question–answer file may be at most {} (is this the right file?)",
                mib(size),
                mib(MAX_FILE_BYTES)
            ),
        });
    }
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
            if line.len() > MAX_LINE_BYTES {
                return Err(DataError::Line {
                    file: file.clone(),
                    line: i + 1,
                    reason: format!(
                        "the line is {}; an item may take at most {} (is this a question–answer file?)",
                        mib(line.len() as u64),
                        mib(MAX_LINE_BYTES as u64)
                    ),
                });
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
    // Lines name JSON-lines entries; a JSON array's elements are named by position.
    let err = |reason: String| match unit {
        "line" => DataError::Line {
            file: file.to_string(),
            line: n,
            reason,
        },
        _ => DataError::File {
            file: file.to_string(),
            reason: format!("item {n}: {reason}"),
        },
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
    let item: QaItem = serde_json::from_value(value).map_err(|e| err(e.to_string()))?;
    let fields = [("question", &item.question), ("answer", &item.answer)]
        .into_iter()
        .chain(
            item.paraphrased_answer
                .iter()
                .map(|p| ("paraphrased_answer", p)),
        )
        .chain(
            item.perturbed_answer
                .iter()
                .map(|p| ("perturbed_answer", p)),
        )
        .chain(
            item.paraphrased_question
                .iter()
                .map(|p| ("paraphrased_question", p)),
        );
    for (name, text) in fields {
        if text.len() > MAX_FIELD_BYTES {
            return Err(err(format!(
                "field `{name}` holds {} bytes; a field may hold at most {} KiB",
                text.len(),
                MAX_FIELD_BYTES >> 10
            )));
        }
    }
    Ok(item)
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
