//! `mdu score` end to end against rouge-score 0.1.2 (`scripts/make_score_fixture.py`):
//! every number equal bit for bit, input order kept for any thread count, bad lines named.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::fixture;

fn mdu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mdu"))
}

fn score(pairs: &Path, threads: usize) -> Output {
    mdu()
        .args(["score", "--pairs"])
        .arg(pairs)
        .args(["--threads", &threads.to_string()])
        .output()
        .unwrap()
}

fn numbers(line: &str) -> [f64; 3] {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 3, "{line}");
    ["precision", "recall", "fmeasure"].map(|k| obj[k].as_f64().unwrap_or_else(|| panic!("{line}")))
}

#[test]
fn score_matches_rouge_score_bit_for_bit_in_order() {
    let pairs = fixture("reference").join("score_pairs.jsonl");
    let expected =
        std::fs::read_to_string(fixture("reference").join("score_expected.jsonl")).unwrap();
    let expected: Vec<[f64; 3]> = expected.lines().map(numbers).collect();
    assert!(expected.len() >= 300);

    let mut outputs = Vec::new();
    for threads in [1, 2, 3] {
        let out = score(&pairs, threads);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let got: Vec<[f64; 3]> = stdout.lines().map(numbers).collect();
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                g.map(f64::to_bits),
                e.map(f64::to_bits),
                "line {}: ours {g:?}, rouge-score {e:?}",
                i + 1
            );
        }
        // Key order and format: {"precision":…,"recall":…,"fmeasure":…}
        assert!(stdout.starts_with(
            "{\"precision\":0.625,\"recall\":0.5555555555555556,\"fmeasure\":0.5882352941176471}\n"
        ));
        outputs.push(stdout);
    }
    assert!(
        outputs.iter().all(|o| *o == outputs[0]),
        "output depends on --threads"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn assert_fails(path: &Path, line: usize, needle: &str) {
    let out = score(path, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout must stay empty on error");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let at = format!("{}:{line}:", path.display());
    assert!(
        stderr.contains(&at) && stderr.contains(needle),
        "expected {at} … {needle}, got {stderr}"
    );
}

#[test]
fn bad_lines_are_named_with_file_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let good = r#"{"reference": "a b c", "candidate": "a c"}"#;
    let cases = [
        (
            "missing.jsonl",
            format!("{good}\n{{\"reference\": \"x\"}}\n"),
            2,
            "missing field \"candidate\"",
        ),
        (
            "number.jsonl",
            format!("{good}\n{good}\n{{\"reference\": 3, \"candidate\": \"y\"}}\n"),
            3,
            "field \"reference\" must be a string",
        ),
        (
            "null.jsonl",
            "{\"reference\": \"x\", \"candidate\": null}\n".to_string(),
            1,
            "field \"candidate\" must be a string",
        ),
        (
            "json.jsonl",
            format!("{good}\n{{\"reference\": \"x\", \n"),
            2,
            "invalid JSON",
        ),
        (
            "array.jsonl",
            format!("[1, 2]\n{good}\n"),
            1,
            "expected a JSON object",
        ),
        (
            "blank.jsonl",
            format!("{good}\n\n{good}\n"),
            2,
            "blank line",
        ),
        ("spaces.jsonl", format!("{good}\n   \n"), 2, "blank line"),
        (
            "dup.jsonl",
            "{\"reference\": \"x\", \"reference\": \"y\", \"candidate\": \"z\"}\n".to_string(),
            1,
            "duplicate field",
        ),
    ];
    for (name, text, line, needle) in cases {
        let p = write(tmp.path(), name, &text);
        assert_fails(&p, line, needle);
    }
    let p = tmp.path().join("latin1.jsonl");
    std::fs::write(&p, b"{\"reference\": \"a\", \"candidate\": \"b\"}\n{\"reference\": \"caf\xe9\", \"candidate\": \"b\"}\n").unwrap();
    assert_fails(&p, 2, "not valid UTF-8");
    let missing = tmp.path().join("nope.jsonl");
    let out = score(&missing, 1);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.jsonl"));
}

#[test]
fn trailing_empty_lines_crlf_and_extra_fields_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "{\"id\": 7, \"reference\": \"He is a general\", \"candidate\": \"He is generous\"}\r\n{\"candidate\": \"b\", \"reference\": \"a b\"}\n\n\n";
    let p = write(tmp.path(), "ok.jsonl", text);
    let out = score(&p, 2);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"precision\":1.0,\"recall\":0.75,\"fmeasure\":0.8571428571428571}\n{\"precision\":1.0,\"recall\":0.5,\"fmeasure\":0.6666666666666666}\n"
    );
    // An empty file is zero records.
    let p = write(tmp.path(), "empty.jsonl", "");
    let out = score(&p, 2);
    assert!(out.status.success() && out.stdout.is_empty());
}
