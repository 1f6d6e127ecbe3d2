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
