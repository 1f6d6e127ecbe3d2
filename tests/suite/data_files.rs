//! TOFU-format files: JSON lines and JSON arrays load; bad files name the file and the line.

use mdu_workbench::data::{read_qa_file, write_jsonl, QaItem};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn jsonl_and_json_array_load_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let items = vec![
        QaItem {
            question: "Q1?".into(),
            answer: "A1.".into(),
            paraphrased_answer: Some("P1.".into()),
            perturbed_answer: vec!["X".into(), "Y".into(), "Z".into()],
            paraphrased_question: None,
        },
        QaItem {
            question: "Q2?".into(),
            answer: "A2.".into(),
            paraphrased_answer: None,
            perturbed_answer: vec![],
            paraphrased_question: None,
        },
    ];
    let path = dir.path().join("items.jsonl");
    write_jsonl(&path, &items).unwrap();
    assert_eq!(read_qa_file(&path).unwrap(), items);
    let array = write(
        &dir,
        "items.json",
        r#"[{"question": "Q?", "answer": "A.", "extra": 1}]"#,
    );
    assert_eq!(read_qa_file(&array).unwrap().len(), 1);
}

#[test]
fn bad_files_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad_json = write(
        &dir,
        "bad.jsonl",
        "{\"question\": \"Q\", \"answer\": \"A\"}\n{not json}\n",
    );
    let err = read_qa_file(&bad_json).unwrap_err().to_string();
    assert!(
        err.contains("bad.jsonl:2") && err.contains("invalid JSON"),
        "{err}"
    );

    let missing = write(
        &dir,
        "missing.jsonl",
        "{\"question\": \"Q\", \"answer\": \"A\"}\n\n{\"question\": \"Q2\"}\n",
    );
    let err = read_qa_file(&missing).unwrap_err().to_string();
    assert!(
        err.contains("missing.jsonl:3") && err.contains("`answer`"),
        "{err}"
    );

    let empty = write(&dir, "empty.jsonl", "\n\n");
    let err = read_qa_file(&empty).unwrap_err().to_string();
    assert!(
        err.contains("empty.jsonl") && err.contains("no question"),
        "{err}"
    );
}
