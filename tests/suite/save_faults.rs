//! A full disk while saving (`MDU_TEST_SAVE_FAULT=K:N`: the K-th model folder written runs out of
//! space after N bytes, the file being written cut there): the run ends with an error naming the
//! folder and the OS's reason, the earlier checkpoints and the input stay as they were, no partial
//! folder is left, and `--resume` finishes the run with each step logged once.

use std::path::Path;
use std::process::Output;

use crate::common::fixture;
use crate::unlearn::{data_files, logged_steps, stderr, tiny, tree_digest};

fn run_with_fault(args: &[String], fault: Option<&str>) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mdu"));
    cmd.arg("unlearn").args(args);
    match fault {
        Some(f) => cmd.env("MDU_TEST_SAVE_FAULT", f),
        None => cmd.env_remove("MDU_TEST_SAVE_FAULT"),
    };
    cmd.output().unwrap()
}

fn resume(run: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mdu"))
        .args(["unlearn", "--quiet", "--resume"])
        .arg(run)
        .env_remove("MDU_TEST_SAVE_FAULT")
        .output()
        .unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn args(tmp: &Path, run: &Path, steps: usize) -> Vec<String> {
    let (forget, retain) = data_files(tmp);
    let mut args = tiny(&forget, &retain, &fixture("llada_f32"), run);
    let at = args.iter().position(|a| a == "--steps").unwrap();
    args[at + 1] = steps.to_string();
    args.extend(["--set", "save_every=1", "--quiet"].map(String::from));
    args
}

#[test]
fn a_full_disk_during_a_checkpoint_keeps_the_earlier_one_and_resume_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let input = tree_digest(&fixture("llada_f32"));
    // Saves: checkpoint-1, then checkpoint-2 runs out of space 3,000 bytes in.
    let out = run_with_fault(&args(tmp.path(), &run, 4), Some("2:3000"));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("checkpoint-2") && err.contains("No space left on device"),
        "{err}"
    );
    let left = entries(&run);
    assert!(left.contains(&"checkpoint-1".to_string()), "{left:?}");
    assert!(
        !left
            .iter()
            .any(|n| n == "checkpoint-2" || n.starts_with('.')),
        "{left:?}"
    );
    assert!(run.join("checkpoint-1/trainer/state.json").is_file());
    mdu_workbench::checkpoint::ModelFiles::open(&run.join("checkpoint-1")).unwrap();
    assert_eq!(
        tree_digest(&fixture("llada_f32")),
        input,
        "the input is untouched"
    );

    let out = resume(&run);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(logged_steps(&run, "step"), [1, 2, 3, 4]);
    mdu_workbench::checkpoint::ModelFiles::open(&run.join("model")).unwrap();
}

#[test]
fn a_full_disk_while_saving_the_final_model_leaves_no_half_model() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // Saves: checkpoint-1, checkpoint-2 (the last step has none: the final model follows), then
    // the final model fails 5,000 bytes in.
    let out = run_with_fault(&args(tmp.path(), &run, 3), Some("3:5000"));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("model")
            && err.contains("No space left on device")
            && err.contains("--resume"),
        "{err}"
    );
    let left = entries(&run);
    assert!(
        !left.iter().any(|n| n == "model" || n.starts_with('.')),
        "{left:?}"
    );
    assert!(run.join("checkpoint-2/trainer/state.json").is_file());

    let out = resume(&run);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(logged_steps(&run, "step"), [1, 2, 3]);
    mdu_workbench::checkpoint::ModelFiles::open(&run.join("model")).unwrap();
    assert!(run.join("summary.json").is_file());
}
