//! Property-based fuzzing of every loader a user's file reaches: TOFU JSON / JSON lines,
//! `config.json`, safetensors headers, sharded-checkpoint index files, tokenizer files and a run's
//! `config.toml`. Inputs are random bytes and random edits of valid files; each loader must answer
//! with a value or an error, never a panic. A short run is part of `cargo test`; the long run:
//! `MDU_FUZZ_CASES=100000 cargo test --release --test suite fuzz -- --test-threads 1`.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::fixture;

/// Cases per loader: `MDU_FUZZ_CASES`, else 300 (a few seconds in all).
fn cases() -> u32 {
    std::env::var("MDU_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// One edit of a valid file: replace, insert or delete a byte, or cut the file there.
#[derive(Clone, Debug)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(valid: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = valid.to_vec();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *e {
            Edit::Replace(i, b) if !v.is_empty() => {
                let i = at(i, v.len());
                v[i] = b;
            }
            Edit::Insert(i, b) => {
                let i = at(i, v.len() + 1);
                v.insert(i, b);
            }
            Edit::Delete(i) if !v.is_empty() => {
                let i = at(i, v.len());
                v.remove(i);
            }
            Edit::Truncate(i) => {
                let i = at(i, v.len() + 1);
                v.truncate(i);
            }
            _ => {}
        }
    }
    v
}

/// Random bytes, or a valid file with 1–8 random edits.
fn input(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        proptest::collection::vec(edit(), 1..8).prop_map(move |edits| apply(&valid, &edits)),
    ]
}

/// Runs `load` on `cases()` inputs derived from `valid`; a panic fails with the input.
fn fuzz(name: &str, valid: Vec<u8>, load: impl Fn(&[u8])) {
    fuzz_with(name, input(valid), load)
}

fn fuzz_with(name: &str, inputs: impl Strategy<Value = Vec<u8>>, load: impl Fn(&[u8])) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&inputs, |bytes| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(&bytes)));
        prop_assert!(
            outcome.is_ok(),
            "{name} panicked on {:?}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    println!("{name}: {} inputs, no panic", cases());
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// Writes `bytes` as `name` in a fresh copy of the fixture's folder (other files intact).
fn fixture_copy_with(dir: &Path, name: &str, bytes: &[u8]) {
    let src = fixture("llada_f32");
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let to = dir.join(entry.file_name());
        if !to.exists() {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn question_answer_files_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let valid = br#"{"question": "Who wrote it?", "answer": "Ana did.", "paraphrased_answer": "Ana.", "perturbed_answer": ["Ben did.", "No one."]}
{"question": "Where?", "answer": "Here."}
"#
    .to_vec();
    for ext in ["jsonl", "json"] {
        let path = tmp.path().join(format!("items.{ext}"));
        let valid = if ext == "json" {
            br#"[{"question": "Who wrote it?", "answer": "Ana did.", "perturbed_answer": ["Ben."]}]"#.to_vec()
        } else {
            valid.clone()
        };
        fuzz(&format!("TOFU .{ext}"), valid, |bytes| {
            std::fs::write(&path, bytes).unwrap();
            let _ = mdu_workbench::data::read_qa_file(&path);
        });
    }
}

#[test]
fn config_json_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for model in ["llada_f32", "dream_gqa"] {
        let valid = read(&fixture(model).join("config.json"));
        fuzz(&format!("config.json ({model})"), valid, |bytes| {
            std::fs::write(dir.join("config.json"), bytes).unwrap();
            let _ = mdu_workbench::model::ModelConfig::from_dir(dir);
        });
    }
}

#[test]
fn safetensors_headers_and_index_files_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("single");
    std::fs::create_dir(&dir).unwrap();
    // The header of the fixture's weights (its data bytes follow unchanged).
    let weights = read(&fixture("llada_f32").join("model.safetensors"));
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let (head, data) = weights.split_at(8 + header_len);
    let open_with_header = |bytes: &[u8]| {
        let mut file = bytes.to_vec();
        file.extend_from_slice(data);
        fixture_copy_with(&dir, "model.safetensors", &file);
        let _ = mdu_workbench::Checkpoint::open(&dir);
    };
    fuzz("safetensors header", head.to_vec(), open_with_header);
    // Well-formed headers with any shapes, dtypes and offsets (huge ones included).
    let names: Vec<String> =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&head[8..])
            .unwrap()
            .keys()
            .cloned()
            .collect();
    let entry = (
        prop_oneof![
            Just("F32"),
            Just("F16"),
            Just("BF16"),
            Just("I64"),
            Just("F64")
        ],
        proptest::collection::vec(prop_oneof![0u64..300, any::<u64>()], 0..4),
        prop_oneof![0u64..200_000, any::<u64>()],
        prop_oneof![0u64..200_000, any::<u64>()],
    );
    let headers = proptest::collection::vec(entry, 1..4).prop_map(move |entries| {
        let mut map = serde_json::Map::new();
        for (i, (dtype, shape, start, end)) in entries.into_iter().enumerate() {
            map.insert(
                names[i % names.len()].clone(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, end]}),
            );
        }
        let json = serde_json::Value::Object(map).to_string().into_bytes();
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend(json);
        bytes
    });
    fuzz_with("safetensors header entries", headers, open_with_header);
    // A sharded layout: the index names the fixture's weights as its one shard.
    let sharded = tmp.path().join("sharded");
    std::fs::create_dir(&sharded).unwrap();
    fixture_copy_with(&sharded, "model.safetensors", &weights);
    std::fs::rename(
        sharded.join("model.safetensors"),
        sharded.join("model-00001-of-00001.safetensors"),
    )
    .unwrap();
    let names: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&head[8..])
            .unwrap()
            .keys()
            .filter(|k| *k != "__metadata__")
            .map(|k| (k.clone(), "model-00001-of-00001.safetensors".into()))
            .collect();
    let index = serde_json::json!({"metadata": {}, "weight_map": names}).to_string();
    fuzz(
        "model.safetensors.index.json",
        index.into_bytes(),
        |bytes| {
            std::fs::write(sharded.join("model.safetensors.index.json"), bytes).unwrap();
            let _ = mdu_workbench::Checkpoint::open(&sharded);
        },
    );
}

#[test]
fn tokenizer_files_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fixture_copy_with(
        dir,
        "config.json",
        &read(&fixture("llada_f32").join("config.json")),
    );
    let config = mdu_workbench::model::ModelConfig::from_dir(dir).unwrap();
    for name in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        let valid = read(&fixture("llada_f32").join(name));
        let original = valid.clone();
        fuzz(name, valid, |bytes| {
            std::fs::write(dir.join(name), bytes).unwrap();
            let _ = mdu_workbench::tokenizer::TextTokenizer::from_dir(dir, &config);
        });
        std::fs::write(dir.join(name), original).unwrap();
    }
}

#[test]
fn vocab_and_merges_files_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let src = fixture("dream_gqa");
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let config = mdu_workbench::model::ModelConfig::from_dir(dir).unwrap();
    for name in ["vocab.json", "merges.txt", "added_tokens.json"] {
        let original = read(&src.join(name));
        fuzz(name, original.clone(), |bytes| {
            std::fs::write(dir.join(name), bytes).unwrap();
            let _ = mdu_workbench::tokenizer::TextTokenizer::from_dir(dir, &config);
        });
        std::fs::write(dir.join(name), original).unwrap();
    }
}

#[test]
fn run_config_toml_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.toml");
    let valid = mdu_workbench::unlearn::config::UnlearnConfig::default()
        .to_toml()
        .into_bytes();
    fuzz("config.toml", valid, |bytes| {
        std::fs::write(&path, bytes).unwrap();
        let _ = mdu_workbench::unlearn::config::UnlearnConfig::from_toml_file(&path);
    });
}
