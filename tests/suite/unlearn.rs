//! `mdu unlearn`, `mdu eval` and `mdu sweep` end to end on the tiny LLaDA fixture, the engine's
//! stop/resume path, and one test per kind of bad input (mdu.md's run-directory contract).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mdu_workbench::unlearn::config::UnlearnConfig;
use mdu_workbench::unlearn::engine;
use mdu_workbench::unlearn::events::Event;

use crate::common::fixture;

fn mdu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mdu"))
}

/// Forget and retain files whose text the fixture tokenizer can encode.
pub fn data_files(dir: &Path) -> (PathBuf, PathBuf) {
    let item = |q: &str, a: &str| {
        serde_json::json!({"question": q, "answer": a, "paraphrased_answer": format!("{a} indeed"),
            "perturbed_answer": [format!("not {a}"), format!("{a} maybe"), "something else entirely"]})
        .to_string()
    };
    let forget = dir.join("forget.jsonl");
    let retain = dir.join("retain.jsonl");
    std::fs::write(
        &forget,
        [
            item("Who wrote the red book?", "Ana Voss wrote it in 1990."),
            item("Where does Ana live?", "Ana lives in a blue house."),
        ]
        .join("\n"),
    )
    .unwrap();
    std::fs::write(
        &retain,
        [
            item("What is two plus two?", "Two plus two is four."),
            item("What colour is the sky?", "The sky is blue."),
            item("Who is Ben?", "Ben is a baker."),
        ]
        .join("\n"),
    )
    .unwrap();
    (forget, retain)
}

pub fn tree_digest(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn unlearn(args: &[&str], extra: &[&Path]) -> Output {
    let mut cmd = mdu();
    cmd.arg("unlearn").args(args);
    for p in extra {
        cmd.arg(p);
    }
    cmd.output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The common flags of a tiny, fast run on the fixture.
pub fn tiny(forget: &Path, retain: &Path, ckpt: &Path, out: &Path) -> Vec<String> {
    [
        "--checkpoint",
        &ckpt.display().to_string(),
        "--forget",
        &forget.display().to_string(),
        "--retain",
        &retain.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--device",
        "cpu",
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--set",
        "live_every=2",
        "--set",
        "eval_mc_samples=2",
        "--set",
        "live_mc_samples=2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn unlearn_writes_a_complete_run_directory_and_leaves_the_input_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (forget, retain) = data_files(tmp.path());
    let ckpt = fixture("llada_f32");
    let before = tree_digest(&ckpt);
    let run = tmp.path().join("run");
    let args = tiny(&forget, &retain, &ckpt, &run);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The retain file doubles as the holdout: the privacy audit runs before and after.
    let holdout = retain.display().to_string();
    let out = unlearn(
        &[
            &args[..],
            &["--method", "mdu", "--tau", "0.5", "--holdout", &holdout],
        ]
        .concat(),
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Every stdout line is one JSON event; steps 1..=3 arrive in order, then `finished`.
    let events: Vec<Event> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let steps: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::Step { step, parts, .. } => {
                assert!(parts.contains_key("forget") && parts.contains_key("retain"));
                Some(*step)
            }
            _ => None,
        })
        .collect();
    assert_eq!(steps, vec![1, 2, 3]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Eval { when, .. } if when == "step")),
        "live evaluation events"
    );
    assert!(matches!(events.last(), Some(Event::Finished { .. })));
    for f in [
        "config.toml",
        "run_info.json",
        "metrics.jsonl",
        "metrics.csv",
        "samples_before.jsonl",
        "samples_after.jsonl",
        "summary.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    for when in ["before", "after"] {
        for split in ["forget", "retain"] {
            let r = summary[when][split]["rougeL_recall"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&r), "{when}/{split}: {r}");
        }
    }
    assert_eq!(summary["params"]["tau"], 0.5);
    // The privacy audit, without a retain-only model: five attacks, no Reference, no privleak;
    // and the export under open-unlearning's names.
    for when in ["before", "after"] {
        let privacy = &summary[when]["privacy"];
        let aucs = privacy["auc"].as_object().unwrap();
        assert_eq!(aucs.len(), 5, "{when}: {aucs:?}");
        assert!(aucs
            .values()
            .all(|v| (0.0..=1.0).contains(&v.as_f64().unwrap())));
        assert!(privacy.get("privleak").is_none());
        let es = privacy["extraction_strength"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&es), "{when}: {es}");
    }
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("open_unlearning.json")).unwrap())
            .unwrap();
    for key in [
        "forget_Q_A_ROUGE",
        "retain_Q_A_ROUGE",
        "mia_min_k",
        "exact_memorization",
    ] {
        assert!(
            exported["after"][key].is_f64(),
            "open_unlearning.json: after.{key}"
        );
    }
    // The saved model opens, and the input checkpoint is byte-for-byte unchanged.
    mdu_workbench::Checkpoint::open(&run.join("model")).unwrap();
    assert_eq!(before, tree_digest(&ckpt));
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "header + 3 steps:\n{csv}");
    // The written config is loadable and reproduces the settings.
    let again = UnlearnConfig::from_toml_file(&run.join("config.toml")).unwrap();
    assert_eq!(again.params.tau, 0.5);
    assert_eq!(again.steps, 3);
}

#[test]
fn stop_leaves_a_resumable_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (forget, retain) = data_files(tmp.path());
    let run = tmp.path().join("run");
    let mut config = UnlearnConfig {
        checkpoint: Some(fixture("llada_f32")),
        forget: Some(forget),
        retain: Some(retain),
        device: "cpu".into(),
        steps: 6,
        batch_size: 2,
        live_every: 0,
        eval_before: false,
        eval_after: false,
        ..Default::default()
    };
    config.method = mdu_workbench::unlearn::Method::Npo;
    let (events, stop, handle) = engine::spawn(config, run.clone(), false);
    let mut stopped_at = None;
    for e in events.iter() {
        match e {
            Event::Step { step: 2, .. } => stop.request(),
            Event::Stopped { step, .. } => stopped_at = Some(step),
            Event::Failed { error } => panic!("{error}"),
            _ => {}
        }
    }
    handle.join().unwrap();
    let step = stopped_at.expect("a Stopped event");
    assert!((2..6).contains(&step), "stopped at {step}");
    assert!(run
        .join(format!("checkpoint-{step}/trainer/state.json"))
        .is_file());
    mdu_workbench::Checkpoint::open(&run.join(format!("checkpoint-{step}"))).unwrap();
    // --resume continues from there to the end.
    let out = mdu()
        .args(["unlearn", "--quiet", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let steps: Vec<usize> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["event"] == "step").then(|| v["step"].as_u64().unwrap() as usize)
        })
        .collect();
    assert_eq!(
        steps,
        (1..=6).collect::<Vec<_>>(),
        "each step exactly once across the stop"
    );
    assert!(run.join("model/model.safetensors").is_file());
}

/// Runs a bad-input case and returns stderr, asserting failure.
fn fails(args: Vec<String>) -> String {
    let out = mdu().arg("unlearn").args(&args).output().unwrap();
    assert!(!out.status.success(), "should have failed: {args:?}");
    stderr(&out)
}

#[test]
fn bad_inputs_name_the_file_and_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let (forget, retain) = data_files(tmp.path());
    let ckpt = fixture("llada_f32");
    let run = |name: &str| tmp.path().join(name);

    // Malformed JSON line: file and line.
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"question\": \"q\", \"answer\": \"a\"}\n{not json\n",
    )
    .unwrap();
    let err = fails(tiny(&bad, &retain, &ckpt, &run("r1")));
    assert!(err.contains("bad.jsonl:2"), "{err}");
    assert!(
        !run("r1").exists(),
        "a refused run leaves no empty run folder"
    );

    // Missing field.
    let missing = tmp.path().join("missing.jsonl");
    std::fs::write(&missing, "{\"question\": \"q\"}\n").unwrap();
    let err = fails(tiny(&missing, &retain, &ckpt, &run("r2")));
    assert!(
        err.contains("missing.jsonl:1") && err.contains("answer"),
        "{err}"
    );

    // Empty forget set.
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let err = fails(tiny(&empty, &retain, &ckpt, &run("r3")));
    assert!(err.contains("empty.jsonl"), "{err}");

    // Tokenizer that does not belong to the checkpoint.
    let mismatched = tmp.path().join("mismatched");
    std::fs::create_dir(&mismatched).unwrap();
    for e in std::fs::read_dir(&ckpt).unwrap().flatten() {
        std::fs::copy(e.path(), mismatched.join(e.file_name())).unwrap();
    }
    let world = tmp.path().join("world");
    assert!(mdu()
        .args(["demo-world", "--out"])
        .arg(&world)
        .output()
        .unwrap()
        .status
        .success());
    std::fs::copy(
        world.join("tokenizer.json"),
        mismatched.join("tokenizer.json"),
    )
    .unwrap();
    let err = fails(tiny(&forget, &retain, &mismatched, &run("r4")));
    assert!(
        err.contains("mismatched")
            && err.contains("tokenizer")
            && (err.contains("config.json says") || err.contains("rows")),
        "{err}"
    );

    // Unwritable output: a path under a regular file.
    let err = fails(tiny(&forget, &retain, &ckpt, &forget.join("run")));
    assert!(err.contains("run directory"), "{err}");

    // Non-finite loss: stop with a clear message and keep the last good state.
    let mut args = tiny(&forget, &retain, &ckpt, &run("r6"));
    args.extend(
        [
            "--method",
            "ga",
            "--lr",
            "1e30",
            "--set",
            "eval_before=false",
            "--set",
            "eval_after=false",
            "--set",
            "live_every=0",
        ]
        .map(String::from),
    );
    let err = fails(args);
    assert!(
        err.contains("not finite") && err.contains("checkpoint-"),
        "{err}"
    );
    let kept = std::fs::read_dir(run("r6"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("checkpoint-"))
        .expect("a checkpoint of the last good state");
    mdu_workbench::Checkpoint::open(&kept.path()).unwrap();

    // Unknown setting in --set.
    let mut args = tiny(&forget, &retain, &ckpt, &run("r7"));
    args.extend(["--set", "taus=1"].map(String::from));
    let err = fails(args);
    assert!(err.contains("taus") && err.contains("unknown"), "{err}");
}

#[test]
fn eval_and_sweep_on_the_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let (forget, retain) = data_files(tmp.path());
    let ckpt = fixture("llada_f32");
    let out = mdu()
        .args([
            "eval",
            "--device",
            "cpu",
            "--mc-samples",
            "2",
            "--checkpoint",
        ])
        .arg(&ckpt)
        .arg("--data")
        .arg(&forget)
        .arg(&retain)
        .arg("--retain-model")
        .arg(fixture("llada_f32_ref"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["forget"]["items"], 2);
    assert_eq!(report["retain"]["items"], 3);
    let fq = report["forget_quality"]
        .as_f64()
        .expect("forget quality with a retain model");
    assert!((0.0..=1.0).contains(&fq));
    assert!(report["protocols"]["probability_mc"]
        .as_str()
        .unwrap()
        .contains("TOFU"));

    let sweep = tmp.path().join("sweep");
    let out = mdu()
        .args([
            "sweep",
            "--device",
            "cpu",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--tau",
            "0,1",
            "--baselines",
            "ga",
            "--set",
            "live_every=0",
            "--set",
            "eval_mc_samples=2",
            "--checkpoint",
        ])
        .arg(&ckpt)
        .arg("--forget")
        .arg(&forget)
        .arg("--retain")
        .arg(&retain)
        .arg("--out")
        .arg(&sweep)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(sweep.join("table.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(
        rows[0].starts_with("mdu,0,")
            && rows[1].starts_with("mdu,1,")
            && rows[2].starts_with("ga,,"),
        "{csv}"
    );
    assert!(std::fs::read_to_string(sweep.join("table.md"))
        .unwrap()
        .contains("| MDU | 0 |"));
}

#[test]
fn shipped_configs_parse_with_the_paper_settings() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    // Steps: epochs (LLaDA 9, Dream 5) × optimiser steps per epoch, HF's Trainer's
    // ⌊⌈rows / 4⌉ / 4⌋ for 40, 200 and 400 forget rows.
    for (file, split, steps) in [
        ("llada8b_tofu_forget10.toml", "forget10", 225),
        ("dream7b_tofu_forget10.toml", "forget10", 125),
        ("llada8b_tofu_forget05.toml", "forget05", 108),
        ("dream7b_tofu_forget05.toml", "forget05", 60),
        ("llada8b_tofu_forget01.toml", "forget01", 18),
        ("dream7b_tofu_forget01.toml", "forget01", 10),
    ] {
        let c = UnlearnConfig::from_toml_file(&dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e:#}"));
        assert_eq!(c.steps, steps, "{file}");
        assert_eq!(
            (c.learning_rate, c.batch_size * c.grad_accum),
            (1e-5, 16),
            "{file}"
        );
        assert_eq!((c.params.alpha, c.params.eta), (1.0, 0.0), "{file}");
        assert_eq!(
            c.generation,
            mdu_workbench::eval::protocol::Generation::Paper,
            "{file}"
        );
        assert!(
            c.forget
                .unwrap()
                .ends_with(format!("data/tofu/{split}.json")),
            "{file}: paths are relative to the file"
        );
        assert!(
            c.lora.is_none(),
            "{file}: the paper fine-tunes every weight"
        );
    }
    let lora = UnlearnConfig::from_toml_file(&dir.join("llada8b_tofu_forget10_lora.toml")).unwrap();
    let settings = lora.lora.expect("[lora]");
    assert_eq!(
        (settings.rank, settings.alpha, settings.targets.len()),
        (16, 32.0, 7)
    );
    assert_eq!((lora.steps, lora.batch_size * lora.grad_accum), (225, 16));
}

#[test]
fn learning_rate_warms_up_then_holds_or_decays() {
    use mdu_workbench::unlearn::config::LrShape;
    // Hand values: 10 steps, 2 warm-up steps, peak 1 → warm-up 0.5, 1; then 8 decay steps.
    let mut c = UnlearnConfig {
        steps: 10,
        warmup_steps: 2,
        learning_rate: 1.0,
        ..Default::default()
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    for shape in [LrShape::Constant, LrShape::Linear, LrShape::Cosine] {
        c.lr_schedule = shape;
        assert!(
            close(c.lr_at(0), 0.5) && close(c.lr_at(1), 1.0),
            "{shape:?}"
        );
        assert!(
            close(c.lr_at(2), 1.0),
            "{shape:?}: the peak right after warm-up"
        );
    }
    c.lr_schedule = LrShape::Constant;
    assert!(close(c.lr_at(9), 1.0));
    c.lr_schedule = LrShape::Linear;
    assert!(close(c.lr_at(6), 0.5) && close(c.lr_at(9), 0.125));
    c.lr_schedule = LrShape::Cosine;
    assert!(
        close(c.lr_at(6), 0.5)
            && close(
                c.lr_at(4),
                0.5 * (1.0 + (0.25 * std::f64::consts::PI).cos())
            )
    );
}

#[test]
fn sweep_picks_every_methods_rate_by_one_rule_on_the_first_seed() {
    use mdu_workbench::eval::protocol::{EvalReport, SplitScores};
    use mdu_workbench::unlearn::run_dir::RunSummary;
    use mdu_workbench::unlearn::sweep::{pick_lr, trade_off_table, SweepRow};
    use mdu_workbench::unlearn::Method;
    let report = |forget: f64, retain: f64| {
        let split = |r: f64| SplitScores {
            rouge_l_recall: r,
            ..Default::default()
        };
        EvalReport {
            splits: [
                ("forget".into(), split(forget)),
                ("retain".into(), split(retain)),
            ]
            .into(),
            ..Default::default()
        }
    };
    let row = |method, lr: f64, seed, forget: f64, retain: f64| SweepRow {
        method,
        tau: None,
        lr,
        seed,
        summary: RunSummary {
            before: Some(report(1.0, 1.0)),
            after: Some(report(forget, retain)),
            method,
            params: Default::default(),
            protocols: serde_json::Value::Null,
            seed,
            steps: 1,
            wall_s: 0.0,
        },
    };
    // Two rates reach forget ≤ 0.3: the one keeping more retain wins, not the one forgetting most.
    let npo = [
        row(Method::Npo, 1e-5, 0, 0.6, 0.99),
        row(Method::Npo, 3e-5, 0, 0.25, 0.8),
        row(Method::Npo, 1e-4, 0, 0.1, 0.5),
    ];
    assert_eq!(pick_lr(&npo.iter().collect::<Vec<_>>(), 0.3), Some(3e-5));
    // None reaches the target: the rate that forgets most, even though it wrecks retain.
    let ga = [
        row(Method::Ga, 1e-5, 0, 0.9, 1.0),
        row(Method::Ga, 3e-5, 0, 0.4, 0.1),
    ];
    assert_eq!(pick_lr(&ga.iter().collect::<Vec<_>>(), 0.3), Some(3e-5));
    // Ties go to the smallest rate, in whatever order the runs come.
    let tied = [
        row(Method::Ga, 2e-4, 0, 0.0, 0.0),
        row(Method::Ga, 5e-5, 0, 0.0, 0.0),
        row(Method::Ga, 1e-4, 0, 0.0, 0.0),
    ];
    assert_eq!(pick_lr(&tied.iter().collect::<Vec<_>>(), 0.3), Some(5e-5));
    // The table reports the picked rate, averaged over every seed run at it.
    let mut rows: Vec<SweepRow> = ga.into_iter().collect();
    rows.push(row(Method::Ga, 3e-5, 1, 0.2, 0.3));
    let table = trade_off_table(&rows, 0.3);
    let line = table.csv.lines().nth(1).unwrap();
    assert!(
        line.starts_with("ga,,3e-5,2,1.000,0.300,0.300,1.000,0.200,0.200,"),
        "{line}"
    );
    // Standard deviations over the two seeds: forget 0.4 / 0.2 and retain 0.1 / 0.3 → √0.02 = 0.141.
    assert!(line.ends_with(",0.141,0.141"), "{line}");
}

/// The steps of the `event` lines ("step", "eval") in a run's `metrics.jsonl`, in order.
pub fn logged_steps(run: &Path, event: &str) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == event)
        .map(|v| v["step"].as_u64().unwrap())
        .collect()
}

/// A run on the fixture that only trains (live evaluation every step, no full evaluations).
pub fn training_only(
    forget: PathBuf,
    retain: PathBuf,
    steps: usize,
    save_every: usize,
) -> UnlearnConfig {
    UnlearnConfig {
        checkpoint: Some(fixture("llada_f32")),
        forget: Some(forget),
        retain: Some(retain),
        device: "cpu".into(),
        steps,
        batch_size: 2,
        live_every: 1,
        live_items: 2,
        live_mc_samples: 1,
        eval_before: false,
        eval_after: false,
        save_every,
        ..Default::default()
    }
}

#[test]
fn a_kill_between_checkpoints_then_resume_logs_each_step_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (forget, retain) = data_files(tmp.path());
    let run = tmp.path().join("run");
    let config = training_only(forget, retain, 4, 2);
    let stop = mdu_workbench::events::StopFlag::new();
    engine::run(config, run.clone(), false, &mut |_| {}, &stop).unwrap();
    // As if killed after step 4, before the end: the newest checkpoint is checkpoint-2, and
    // both logs already hold steps 3 and 4.
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let out = mdu()
        .args(["unlearn", "--quiet", "--resume"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let logged = |event: &str| logged_steps(&run, event);
    assert_eq!(logged("step"), [1, 2, 3, 4], "steps in metrics.jsonl");
    assert_eq!(
        logged("eval"),
        [1, 2, 3, 4],
        "live evaluations in metrics.jsonl"
    );
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let steps: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(steps, ["1", "2", "3", "4"], "metrics.csv:\n{csv}");
    assert!(
        rows.iter().all(|r| !r[r.len() - 1].is_empty()),
        "every row keeps its live score:\n{csv}"
    );
}

#[test]
fn oversized_items_are_refused_by_name_before_they_are_parsed() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, retain) = data_files(tmp.path());
    let ckpt = fixture("llada_f32");
    let run = |name: &str| tmp.path().join(name);
    // One 5 MiB question on a JSON line: refused from its length, naming file and line.
    let huge = tmp.path().join("huge.jsonl");
    let question = "x".repeat(5 << 20);
    std::fs::write(
        &huge,
        format!("{{\"question\": \"{question}\", \"answer\": \"a\"}}\n"),
    )
    .unwrap();
    let err = fails(tiny(&huge, &retain, &ckpt, &run("r1")));
    assert!(
        err.contains("huge.jsonl:1") && err.contains("5.0 MiB"),
        "{err}"
    );
    // In a JSON array, an over-long field is named with its item.
    let long_field = tmp.path().join("long_field.json");
    let question = "x".repeat(100 << 10);
    std::fs::write(
        &long_field,
        format!("[{{\"question\": \"{question}\", \"answer\": \"a\"}}]"),
    )
    .unwrap();
    let err = fails(tiny(&long_field, &retain, &ckpt, &run("r2")));
    assert!(
        err.contains("long_field.json") && err.contains("item 1") && err.contains("`question`"),
        "{err}"
    );
    // An item longer than the model's positions (64 in the fixture's config), with its length.
    let long_item = tmp.path().join("long_item.jsonl");
    let answer = "Ana lives in a blue house. ".repeat(30);
    std::fs::write(
        &long_item,
        format!("{{\"question\": \"Where does Ana live?\", \"answer\": \"{answer}\"}}\n"),
    )
    .unwrap();
    let err = fails(tiny(&long_item, &retain, &ckpt, &run("r3")));
    assert!(
        err.contains("long_item.jsonl: item 1")
            && err.contains("tokens")
            && err.contains("64 positions"),
        "{err}"
    );
    for r in ["r1", "r2", "r3"] {
        assert!(
            !run(r).join("metrics.jsonl").exists(),
            "{r}: nothing trained"
        );
    }
    // With --truncate the answer is cut to fit, and one warning says so.
    let mut args = tiny(&long_item, &retain, &ckpt, &run("r4"));
    args.extend(
        [
            "--truncate",
            "--set",
            "eval_before=false",
            "--set",
            "eval_after=false",
            "--set",
            "live_every=0",
        ]
        .map(String::from),
    );
    let out = mdu().arg("unlearn").args(&args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("\"event\":\"warning\""))
        .collect();
    assert_eq!(warnings.len(), 1, "{stdout}");
    assert!(
        warnings[0].contains("1 training item(s)") && warnings[0].contains("cut to fit"),
        "{}",
        warnings[0]
    );
}

/// The steps of the checkpoint folders left in `run`, in order, and the best one's step.
pub fn checkpoints_and_best(run: &Path) -> (Vec<usize>, usize) {
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("best_checkpoint.json")).unwrap())
            .unwrap();
    let mut kept: Vec<usize> = std::fs::read_dir(run)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("checkpoint-")?
                .parse()
                .ok()
        })
        .collect();
    kept.sort_unstable();
    (kept, best["step"].as_u64().unwrap() as usize)
}

#[test]
fn checkpoints_are_pruned_to_the_newest_k_plus_the_best() {
    let tmp = tempfile::tempdir().unwrap();
    let (forget, retain) = data_files(tmp.path());
    let run = tmp.path().join("run");
    let config = UnlearnConfig {
        keep_checkpoints: 2,
        ..training_only(forget, retain, 7, 1)
    };
    let stop = mdu_workbench::events::StopFlag::new();
    let mut saved = Vec::new();
    engine::run(
        config,
        run.clone(),
        false,
        &mut |e| {
            if let Event::Checkpoint { step, .. } = e {
                saved.push(step);
            }
        },
        &stop,
    )
    .unwrap();
    assert_eq!(
        saved,
        [1, 2, 3, 4, 5, 6],
        "a checkpoint every step but the last"
    );
    let (kept, best) = checkpoints_and_best(&run);
    let mut want = vec![5, 6];
    if !want.contains(&best) {
        want.insert(0, best);
    }
    assert_eq!(kept, want, "the newest two and the best (step {best})");
    assert!(run
        .join(format!("checkpoint-{best}/trainer/state.json"))
        .is_file());
}

#[test]
fn estimate_time_probes_the_run_and_scales_it_without_writing_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (forget, retain) = data_files(tmp.path());
    let ckpt = fixture("llada_f32");
    let run = tmp.path().join("run");
    let mut args = tiny(&forget, &retain, &ckpt, &run);
    let steps = args.iter().position(|a| a == "--steps").unwrap();
    args[steps + 1] = "40".into();
    args.push("--estimate-time".into());
    // Without the evaluation cache the run reuses nothing, so every part is counted.
    let out = mdu()
        .arg("unlearn")
        .args(&args)
        .env("MDU_NO_EVAL_CACHE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let estimate: mdu_workbench::unlearn::cost::CostEstimate =
        serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert!(!run.exists(), "an estimate writes no run folder");
    assert!(
        estimate.step_s > 0.0 && estimate.loading_s > 0.0,
        "{estimate:?}"
    );
    // 40 steps at the measured step time; "after" scores what "before" does.
    assert!((estimate.training_s - 40.0 * estimate.step_s).abs() < 1e-9);
    assert!(estimate.before_s > 0.0 && estimate.after_s == estimate.before_s);
    // live_every = 2 over 40 steps: 20 live evaluations.
    assert!(estimate.live_s > 0.0, "{estimate:?}");
    assert!(stderr(&out).starts_with('≈'), "{}", stderr(&out));
}
