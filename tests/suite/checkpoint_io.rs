//! Load → save → load is bit-identical in every layout; corrupted checkpoints give one-line errors
//! that name the file and the tensor; saving never touches the input.

use std::path::Path;

use mdu_workbench::checkpoint::{self, Checkpoint, CheckpointError, MemoryBudget};
use mdu_workbench::device::CpuBackend;
use mdu_workbench::load_model;

use crate::common::{fixture, FIXTURES};

type B = CpuBackend;

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
}

fn open_err(dir: &Path) -> String {
    let err = match Checkpoint::open(dir) {
        Ok(_) => panic!("{}: expected an error", dir.display()),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains('\n'), "error must be one line: {err}");
    err
}

#[test]
fn save_reproduces_every_tensor_bit_for_bit() {
    let device = Default::default();
    for name in FIXTURES {
        let src = fixture(name);
        let (original, model) =
            load_model::<B>(&src, &device, &MemoryBudget::unlimited("test")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("saved");
        checkpoint::save(&model, &original.layout, Some(&src), &out).unwrap();

        let saved = Checkpoint::open(&out).unwrap();
        assert_eq!(
            saved.layout, original.layout,
            "{name}: layout (files, shard map, dtypes) changed"
        );
        assert_eq!(saved.config, original.config);
        for tensor in original.layout.tensor_file.keys() {
            assert!(
                saved.tensor_bytes(tensor) == original.tensor_bytes(tensor),
                "{name}: bytes of `{tensor}` changed"
            );
        }
        for file in &saved.layout.files {
            let meta = saved.file_metadata(file).unwrap();
            assert_eq!(
                meta.get("format").map(String::as_str),
                Some("pt"),
                "{name}/{file}: metadata {meta:?}"
            );
        }
        for side in ["config.json", "tokenizer_config.json"] {
            assert_eq!(
                std::fs::read(src.join(side)).unwrap(),
                std::fs::read(out.join(side)).unwrap(),
                "{name}: {side}"
            );
        }
        // And the reloaded model computes the same logits, bit for bit.
        let reloaded = saved
            .load::<B>(&device, &MemoryBudget::unlimited("test"))
            .unwrap();
        let ids = vec![vec![1u32, 2, 3, 4]];
        assert_eq!(
            model.logits_host(&ids, None, &device),
            reloaded.logits_host(&ids, None, &device)
        );
        // Sharded stays sharded, with an index the project wrote.
        assert_eq!(
            out.join(checkpoint::INDEX_FILE).exists(),
            original.layout.sharded
        );
        assert!(!tmp
            .path()
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains("partial")));
    }
}

#[test]
fn save_refuses_the_input_folder_and_non_empty_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    copy_dir(&fixture("llada_f32"), &dir);
    let (ckpt, model) =
        load_model::<B>(&dir, &Default::default(), &MemoryBudget::unlimited("test")).unwrap();
    let before = std::fs::read(dir.join("model.safetensors")).unwrap();
    let err = checkpoint::save(&model, &ckpt.layout, Some(&dir), &dir)
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing to save"), "{err}");
    assert_eq!(
        before,
        std::fs::read(dir.join("model.safetensors")).unwrap(),
        "input checkpoint was modified"
    );
}

#[test]
fn truncated_file_names_file_and_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    copy_dir(&fixture("llada_f32"), &dir);
    let file = dir.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let err = open_err(&dir);
    assert!(
        err.contains("model.safetensors") && err.contains("truncated") && err.contains("tensor `"),
        "{err}"
    );
}

/// Rewrites a safetensors header in place (keeping the data) with `edit` applied to the JSON.
fn edit_header(file: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let mut text = serde_json::to_vec(&header).unwrap();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(file, out).unwrap();
}

#[test]
fn renamed_tensor_is_named_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    copy_dir(&fixture("llada_f32"), &dir);
    let victim = "model.transformer.blocks.1.up_proj.weight";
    edit_header(&dir.join("model.safetensors"), |h| {
        let v = h.remove(victim).unwrap();
        h.insert("model.transformer.blocks.1.upproj.weight".into(), v);
    });
    let err = open_err(&dir);
    assert!(
        err.contains("model.safetensors") && err.contains(victim) && err.contains("missing"),
        "{err}"
    );
    assert!(
        err.contains("upproj"),
        "hint should name the unexpected tensor: {err}"
    );
}

#[test]
fn wrong_shape_names_tensor_and_both_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    copy_dir(&fixture("dream_gqa"), &dir);
    let victim = "model.layers.0.mlp.down_proj.weight";
    let mut expected = Vec::new();
    edit_header(&dir.join("model.safetensors"), |h| {
        let shape = h[victim]["shape"].as_array().unwrap().clone();
        expected = shape
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect::<Vec<_>>();
        h.get_mut(victim).unwrap()["shape"] = serde_json::json!([expected[1], expected[0]]);
    });
    let err = open_err(&dir);
    assert!(err.contains(victim) && err.contains("shape"), "{err}");
    assert!(
        err.contains(&format!("[{}, {}]", expected[0], expected[1])),
        "{err}"
    );
}

#[test]
fn sharded_index_missing_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    copy_dir(&fixture("llada_sharded"), &dir);
    let index = dir.join(checkpoint::INDEX_FILE);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    json["weight_map"]
        .as_object_mut()
        .unwrap()
        .remove("model.transformer.ln_f.weight");
    std::fs::write(&index, serde_json::to_vec(&json).unwrap()).unwrap();
    let err = open_err(&dir);
    assert!(
        err.contains("model.safetensors.index.json")
            && err.contains("model.transformer.ln_f.weight"),
        "{err}"
    );
}

#[test]
fn unknown_model_type_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    copy_dir(&fixture("llada_f32"), &dir);
    let cfg = dir.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    json["model_type"] = "gpt2".into();
    std::fs::write(&cfg, serde_json::to_vec(&json).unwrap()).unwrap();
    let err = open_err(&dir);
    assert!(
        err.contains("config.json") && err.contains("gpt2") && err.contains("llada"),
        "{err}"
    );
}

#[test]
fn memory_estimate_refuses_with_numbers() {
    let ckpt = Checkpoint::open(&fixture("llada_f32")).unwrap();
    let budget = MemoryBudget {
        device: "tiny-device".into(),
        available: Some(1000),
        max_buffer: None,
    };
    let err = ckpt.load::<B>(&Default::default(), &budget).unwrap_err();
    assert!(matches!(err, CheckpointError::TooBig { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("GiB") && text.contains("tiny-device"),
        "{text}"
    );
    // The estimate covers at least the f32 weights.
    assert!(checkpoint::estimate_bytes(&ckpt.config, 4) >= ckpt.config.num_parameters() * 4);
}

#[test]
fn buffer_limit_names_the_largest_tensor() {
    let ckpt = Checkpoint::open(&fixture("llada_f32")).unwrap();
    // The embedding (296 × 32 f32 = 37,888 bytes) cannot fit a 16 KiB buffer; norms (128 bytes) can.
    let budget = MemoryBudget {
        device: "small-gpu".into(),
        available: None,
        max_buffer: Some(16 * 1024),
    };
    let text = ckpt
        .load::<B>(&Default::default(), &budget)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("model.transformer.wte.weight") && text.contains("small-gpu"),
        "{text}"
    );
}

#[test]
fn parameter_count_matches_the_files() {
    for name in FIXTURES {
        let ckpt = Checkpoint::open(&fixture(name)).unwrap();
        let from_files: u64 = ckpt
            .layout
            .tensor_file
            .keys()
            .map(|t| ckpt.tensor_data(t).unwrap().shape.iter().product::<usize>() as u64)
            .sum();
        assert_eq!(ckpt.config.num_parameters(), from_files, "{name}");
    }
}

#[test]
fn a_load_stops_between_tensors_when_asked() {
    let ckpt = Checkpoint::open(&fixture("llada_f32")).unwrap();
    let asked = std::cell::Cell::new(0);
    // Stop fires on the 4th question, i.e. after three tensors were read.
    let stop = || {
        asked.set(asked.get() + 1);
        asked.get() > 3
    };
    let err = ckpt
        .load_until::<B>(&Default::default(), &MemoryBudget::unlimited("cpu"), &stop)
        .unwrap_err();
    assert!(matches!(err, CheckpointError::Stopped), "{err}");
    assert_eq!(
        asked.get(),
        4,
        "asked once per tensor, and not after stopping"
    );
    // Never asked to stop: the whole model loads, one question per tensor.
    asked.set(-1000);
    ckpt.load_until::<B>(&Default::default(), &MemoryBudget::unlimited("cpu"), &stop)
        .unwrap();
    let tensors = mdu_workbench::model::expected_tensors(&ckpt.config).len() as i32;
    assert_eq!(asked.get(), -1000 + tensors);
}
