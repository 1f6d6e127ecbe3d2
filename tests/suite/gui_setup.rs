//! A real run's set-up and continuation, driven through the window: a preset fills every knob as
//! its `configs/` file says, Save config → Open config round-trips the setup, and History resumes
//! a run that was cut off, with every step once in its curves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use egui_kittest::kittest::Queryable;
use mdu_workbench::gui::dialogs::ScriptedDialogs;
use mdu_workbench::unlearn::config::UnlearnConfig;

use crate::gui::{settled_with, step_until};

#[test]
fn choosing_the_llada_preset_fills_the_knobs_as_its_config_says() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = settled_with(&tmp, ScriptedDialogs::default());
    let root = tmp.path().join("work");
    h.state_mut().settings.data_root = root.clone();
    h.get_by_label("Preset").scroll_to_me();
    h.run_ok();
    h.get_by_label("Preset").click();
    h.run_ok();
    h.get_by_label("Paper: LLaDA-8B TOFU forget10").click();
    h.run_ok();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/llada8b_tofu_forget10.toml");
    let want = UnlearnConfig::from_toml_file(&file).unwrap();
    let app = h.state();
    let got = &app.settings.config;
    assert_eq!(got.knobs(), want.knobs(), "the knobs of {}", file.display());
    assert_eq!(got.device, "cpu", "the device stays as chosen");
    // The paths are the file's, under the chosen folder instead of configs/..
    let under = |p: &str| root.join(p);
    assert_eq!(app.checkpoint.path_buf(), under("models/LLaDA-8B-Instruct"));
    assert_eq!(app.forget.path_buf(), under("data/tofu/forget10.json"));
    assert_eq!(
        app.retain.path_buf(),
        under("data/tofu/retain_perturbed.json")
    );
    assert_eq!(
        got.eval_files,
        [
            under("data/tofu/real_authors_perturbed.json"),
            under("data/tofu/world_facts_perturbed.json")
        ]
    );
    // What it needs is said, and the missing model folder is named.
    h.get_by_label_contains("GSAI-ML/LLaDA-8B-Instruct");
    step_until(
        &mut h,
        "the model folder read",
        Duration::from_secs(30),
        |a| a.checkpoint.info.is_some(),
    );
    let problem = h.state().checkpoint.problem().expect("no model there yet");
    assert!(problem.contains("LLaDA-8B-Instruct"), "{problem}");
}

#[test]
fn save_config_then_open_config_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("setup.toml");
    let dialogs = ScriptedDialogs::new(vec![Some(file.clone()), Some(file.clone())]);
    let mut h = settled_with(&tmp, dialogs);
    {
        let c = &mut h.state_mut().settings.config;
        c.params.tau = 0.3;
        c.steps = 7;
        c.grad_accum = 2;
        c.lora = Some(Default::default());
        c.stop_at_forget_rouge = Some(0.2);
        c.eval_files = vec![PathBuf::from("/elsewhere/utility.json")];
    }
    let set_up = h.state().config_as_set_up();
    assert!(set_up.demo, "the inputs are the demo's");
    h.get_by_label("Save config…").scroll_to_me();
    h.run_ok();
    h.get_by_label("Save config…").click();
    step_until(
        &mut h,
        "the config written",
        Duration::from_secs(10),
        |_| file.is_file(),
    );
    let written = UnlearnConfig::from_toml_file(&file).unwrap();
    assert_eq!(written, set_up, "the file holds the setup");

    h.state_mut().settings.config.steps = 99;
    h.state_mut().settings.config.lora = None;
    h.get_by_label("Open config…").click();
    step_until(&mut h, "the config read", Duration::from_secs(10), |a| {
        a.settings.config.steps == 7
    });
    step_until(&mut h, "the demo's files", Duration::from_secs(30), |a| {
        a.is_settled()
    });
    assert_eq!(h.state().config_as_set_up(), set_up);
}

#[test]
fn resuming_a_cut_off_run_from_history_shows_every_step_once() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("runs").join("20260101-000000-mdu-cut-off");
    let config = UnlearnConfig {
        demo: true,
        device: "cpu".into(),
        steps: 4,
        batch_size: 2,
        save_every: 2,
        live_every: 1,
        live_items: 2,
        live_mc_samples: 1,
        eval_before: false,
        eval_after: false,
        ..Default::default()
    };
    let stop = mdu_workbench::events::StopFlag::new();
    mdu_workbench::unlearn::engine::run(config, run.clone(), false, &mut |_| {}, &stop).unwrap();
    // As if killed after step 4 before its checkpoint and the end: checkpoint-2 is the newest,
    // and the log already holds steps 3 and 4.
    assert!(run.join("checkpoint-2").is_dir());
    for gone in ["summary.json", "model", "checkpoint-4"] {
        let p = run.join(gone);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else if p.exists() {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let mut h = settled_with(&tmp, ScriptedDialogs::default());
    step_until(&mut h, "the history", Duration::from_secs(30), |a| {
        a.history.iter().any(|e| e.resume_step == Some(2))
    });
    let entry = &h.state().history[0];
    assert!(entry.size_bytes > 0, "the run folder's size is shown");
    h.state_mut().tab = mdu_workbench::gui::Tab::History;
    h.run_ok();
    h.get_by_label("Resume").click();
    step_until(
        &mut h,
        "the resumed run to finish",
        Duration::from_secs(300),
        |a| a.record.state == mdu_workbench::gui::series::RunState::Finished,
    );
    let steps: Vec<f64> = h.state().record.loss.iter().map(|p| p[0]).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0, 4.0], "every step once in the curves");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let logged: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(logged, ["1", "2", "3", "4"], "metrics.csv:\n{csv}");
    assert!(run.join("summary.json").is_file());
}

#[test]
fn a_real_model_read_with_the_demo_knobs_switches_them_to_the_papers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = settled_with(&tmp, ScriptedDialogs::default());
    h.state_mut().settings.config = UnlearnConfig {
        device: "cpu".into(),
        ..Default::default()
    };
    h.state_mut()
        .checkpoint
        .set(&crate::common::fixture("llada_f32"));
    step_until(&mut h, "the model read", Duration::from_secs(30), |a| {
        a.checkpoint.is_ok()
    });
    h.run_ok();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/llada8b_tofu_forget10.toml");
    let paper = UnlearnConfig::from_toml_file(&file).unwrap();
    let app = h.state();
    assert_eq!(app.settings.config.knobs(), paper.knobs());
    assert_eq!(app.settings.config.device, "cpu");
    assert!(app.status.contains("the paper's"), "{}", app.status);
    // Knobs someone changed are left alone.
    h.state_mut().settings.config.steps = 3;
    h.state_mut()
        .checkpoint
        .set(&crate::common::fixture("dream_gqa"));
    step_until(
        &mut h,
        "the second model read",
        Duration::from_secs(30),
        |a| a.checkpoint.is_ok(),
    );
    h.run_ok();
    assert_eq!(h.state().settings.config.steps, 3);
}

#[test]
fn estimate_time_probes_the_demo_and_holds_while_the_setup_does() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = settled_with(&tmp, ScriptedDialogs::default());
    h.get_by_label("Estimate time").scroll_to_me();
    h.run_ok();
    h.get_by_label("Estimate time").click();
    step_until(&mut h, "the time estimate", Duration::from_secs(300), |a| {
        a.cost.answer.is_some()
    });
    let estimate = h.state().cost.answer.clone().unwrap().expect("an estimate");
    // ("before" may come from this machine's evaluation cache; "after" never does.)
    assert!(
        estimate.training_s > 0.0 && estimate.after_s > 0.0,
        "{estimate:?}"
    );
    h.get_by_label_contains("Time ≈");
    // Another setup, another cost: the button comes back.
    h.state_mut().settings.config.steps += 1;
    h.run_ok();
    h.get_by_label("Estimate time");
}

#[test]
fn a_window_run_keeps_the_newest_checkpoints_plus_the_best() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = settled_with(&tmp, ScriptedDialogs::default());
    {
        // Advanced: a checkpoint every step, keep 2.
        let c = &mut h.state_mut().settings.config;
        c.steps = 6;
        c.save_every = 1;
        c.keep_checkpoints = 2;
    }
    h.get_by_label("▶ Start").click();
    step_until(&mut h, "the run to finish", Duration::from_secs(300), |a| {
        a.record.state == mdu_workbench::gui::series::RunState::Finished
    });
    let run = h.state().record.run_dir.clone().expect("the run's folder");
    let (kept, best) = crate::unlearn::checkpoints_and_best(&run);
    let mut want = vec![4, 5];
    if !want.contains(&best) {
        want.insert(0, best);
    }
    assert_eq!(kept, want, "the newest two and the best (step {best})");
}

/// The window opens a Qwen3 A2D and an LLaDA-MoE model and unlearns each, as it does the demo.
#[test]
fn the_window_unlearns_a_qwen3_a2d_and_an_llada_moe_model() {
    for (name, architecture) in [("qwen3_a2d", "Qwen3 (A2D)"), ("llada_moe", "LLaDA-MoE")] {
        let tmp = tempfile::tempdir().unwrap();
        let (forget, retain) = crate::unlearn::data_files(tmp.path());
        let mut h = settled_with(&tmp, ScriptedDialogs::default());
        // Knobs changed from the demo's, so that reading a real model leaves them alone.
        h.state_mut().settings.config = UnlearnConfig {
            device: "cpu".into(),
            steps: 2,
            batch_size: 2,
            live_every: 1,
            live_mc_samples: 1,
            eval_mc_samples: 1,
            eval_max_items: Some(2),
            eval_tofu: false,
            leakage_probe: false,
            ..Default::default()
        };
        h.state_mut().checkpoint.set(&crate::common::fixture(name));
        h.state_mut().forget.set(&forget);
        h.state_mut().retain.set(&retain);
        step_until(
            &mut h,
            "the model and data read",
            Duration::from_secs(60),
            |a| a.checkpoint.is_ok() && a.forget.is_ok() && a.retain.is_ok(),
        );
        h.run_ok();
        match &h.state().checkpoint.info {
            Some(Ok(info)) => assert_eq!(info.architecture, architecture, "{name}"),
            other => panic!("{name}: {:?}", other.as_ref().map(|r| r.as_ref().err())),
        }
        h.get_by_label("▶ Start").click();
        step_until(&mut h, "the run to finish", Duration::from_secs(300), |a| {
            !matches!(
                a.record.state,
                mdu_workbench::gui::series::RunState::Idle
                    | mdu_workbench::gui::series::RunState::Running
            )
        });
        let state = h.state();
        assert_eq!(
            state.record.state,
            mdu_workbench::gui::series::RunState::Finished,
            "{name}: errors {:?}",
            state.errors
        );
        assert_eq!(state.record.loss.len(), 2, "{name}: a loss point per step");
    }
}
