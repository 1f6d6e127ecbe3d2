//! The `mdu` binary end to end: `mdu logits` prints the reference logits; bad input gives one line.

use std::process::Command;

use crate::common::{fixture, max_abs_diff, Reference};

fn mdu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mdu"))
}

#[test]
fn logits_subcommand_prints_reference_logits() {
    let reference = Reference::load("dream_gqa");
    let ids: Vec<String> = reference.input_ids[0].iter().map(u32::to_string).collect();
    let out = mdu()
        .args(["logits", "--checkpoint"])
        .arg(fixture("dream_gqa"))
        .args(["--ids", &ids.join(","), "--device", "cpu"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<Vec<f32>> = serde_json::from_value(json["logits"].clone()).unwrap();
    assert_eq!(rows.len(), ids.len());
    let ours: Vec<f32> = rows.into_iter().flatten().collect();
    let expected: Vec<f32> = reference.logits_nomask[0]
        .iter()
        .flatten()
        .copied()
        .collect();
    let diff = max_abs_diff(&ours, &expected);
    assert!(diff <= 1e-4, "max |Δ| = {diff:e}");
}

#[test]
fn missing_checkpoint_is_one_clear_line() {
    let out = mdu()
        .args([
            "logits",
            "--checkpoint",
            "/nonexistent/model",
            "--ids",
            "1,2",
            "--device",
            "cpu",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("/nonexistent/model/config.json"),
        "{stderr}"
    );
}

#[test]
fn out_of_vocabulary_id_is_refused() {
    let out = mdu()
        .args(["logits", "--checkpoint"])
        .arg(fixture("llada_f32"))
        .args(["--ids", "1,999999", "--device", "cpu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("999999"));
}

/// `mdu demo-world` then `mdu finetune`: checkpoints in HF layout that load, metrics lines, and a
/// `--resume` from the middle that ends where the uninterrupted run ends.
#[test]
fn finetune_writes_loadable_checkpoints_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("world");
    let out = mdu()
        .args(["demo-world", "--out"])
        .arg(&data)
        .args(["--vocab-size", "512"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = |dir: &std::path::Path, resume: bool| {
        let mut cmd = mdu();
        cmd.args(["finetune", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(dir);
        cmd.args([
            "--steps",
            "6",
            "--save-every",
            "3",
            "--eval-every",
            "0",
            "--eval-items",
            "2",
            "--batch-size",
            "4",
        ]);
        cmd.args([
            "--hidden", "32", "--layers", "1", "--heads", "4", "--mlp", "64", "--warmup", "2",
            "--lr", "3e-3",
        ]);
        if resume {
            cmd.arg("--resume");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let loss_at = |dir: &std::path::Path, step: u64| -> f64 {
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["step"] == step && v.get("loss").is_some())
            .map(|v| v["loss"].as_f64().unwrap())
            .last()
            .unwrap()
    };
    let full = tmp.path().join("full");
    run(&full, false);
    mdu_workbench::Checkpoint::open(&full.join("checkpoint-3")).unwrap();
    mdu_workbench::Checkpoint::open(&full.join("model")).unwrap();
    assert!(full.join("model/tokenizer.json").exists());

    let resumed = tmp.path().join("resumed");
    std::fs::create_dir_all(&resumed).unwrap();
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    };
    copy(&full.join("checkpoint-3"), &resumed.join("checkpoint-3"));
    copy(
        &full.join("checkpoint-3/trainer"),
        &resumed.join("checkpoint-3/trainer"),
    );
    run(&resumed, true);
    let (a, b) = (loss_at(&full, 6), loss_at(&resumed, 6));
    assert!(
        (a - b).abs() <= 1e-4 * a.abs(),
        "step-6 loss: uninterrupted {a}, resumed {b}"
    );
    assert!(std::fs::read_to_string(resumed.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .all(|l| !l.contains("\"step\":1,")));
}

#[test]
fn generate_answers_a_free_prompt_deterministically() {
    for name in ["llada_f32", "dream_gqa"] {
        let run = || {
            let out = mdu()
                .args(["generate", "--checkpoint"])
                .arg(fixture(name))
                .args([
                    "--prompt",
                    "Who is Ada?",
                    "--max-new-tokens",
                    "6",
                    "--device",
                    "cpu",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(run(), run(), "{name}: temperature 0 must be deterministic");
    }
}

#[test]
fn a_closed_stdout_ends_quietly_with_status_0() {
    // 64 rows of 296 logits: far more than a pipe holds, so the write meets the closed end.
    let ids: Vec<String> = (0..64).map(|i| (i % 50).to_string()).collect();
    let mut child = mdu()
        .args(["logits", "--checkpoint"])
        .arg(fixture("llada_f32"))
        .args(["--ids", &ids.join(","), "--device", "cpu"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{stderr}"
    );
}

#[test]
fn an_error_says_each_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = mdu()
        .args(["inspect", "--checkpoint"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The operating system's reason ("No such file or directory (os error 2)"), said once.
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}
