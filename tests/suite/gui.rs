//! The workbench window driven headless through egui_kittest by accessible labels, with the real
//! engine on the embedded demo (few steps, small evaluations) and scripted file dialogs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use mdu_workbench::gui::dialogs::ScriptedDialogs;
use mdu_workbench::gui::series::RunState;
use mdu_workbench::gui::{Settings, Tab, WorkbenchApp, APP_TITLE};
use mdu_workbench::unlearn::config::UnlearnConfig;

/// A quick demo setup: 3 steps, live evaluation every step on 4 items, full evaluation on 4 items.
fn quick_settings(runs_root: PathBuf, steps: usize) -> Settings {
    Settings {
        runs_root,
        config: UnlearnConfig {
            device: "cpu".into(),
            steps,
            batch_size: 2,
            live_every: 1,
            live_items: 4,
            live_mc_samples: 1,
            eval_max_items: Some(4),
            eval_mc_samples: 1,
            eval_tofu: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn harness(app: WorkbenchApp) -> Harness<'static, WorkbenchApp> {
    Harness::builder()
        .with_size([1280.0, 820.0])
        .build_ui_state(|ui, app: &mut WorkbenchApp| app.show(ui), app)
}

/// Steps the window until `done` holds (the engine and jobs run on their own threads).
pub fn step_until(
    h: &mut Harness<'static, WorkbenchApp>,
    what: &str,
    limit: Duration,
    done: impl Fn(&WorkbenchApp) -> bool,
) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}; status {:?}, errors {:?}",
            h.state().status,
            h.state().errors
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.step();
}

#[test]
fn demo_opens_runs_saves_and_is_in_history_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let saved = tmp.path().join("saved-model");
    let dialogs = ScriptedDialogs::new(vec![Some(saved.clone())]);
    let app = WorkbenchApp::new(
        quick_settings(tmp.path().join("runs"), 3),
        Box::new(dialogs),
    );
    let mut h = harness(app);
    step_until(&mut h, "the demo", Duration::from_secs(60), |a| {
        a.checkpoint.is_ok() && a.forget.is_ok() && a.retain.is_ok()
    });
    h.get_by_label(APP_TITLE);
    h.get_by_label("Using the embedded demo (with its retain-only model and utility files).");
    assert!(h.state().checkpoint.path.contains("demo-"));

    h.get_by_label("▶ Start").click();
    step_until(&mut h, "the run to finish", Duration::from_secs(600), |a| {
        !matches!(a.record.state, RunState::Idle | RunState::Running)
    });
    let record = &h.state().record;
    assert_eq!(
        record.state,
        RunState::Finished,
        "errors: {:?}",
        h.state().errors
    );
    assert_eq!(record.loss.len(), 3, "one loss point per step");
    assert!(record.parts.contains_key("forget") && record.parts.contains_key("retain"));
    let live = record.eval_series("forget", "live", mdu_workbench::gui::series::rouge_recall);
    assert_eq!(live.len(), 3, "a live evaluation per step");
    let full = record.eval_series("retain", "full", mdu_workbench::gui::series::rouge_recall);
    assert_eq!(full.len(), 2, "full evaluations before and after");
    assert!(!record.samples.is_empty(), "samples filled");
    assert!(record.to_csv().lines().count() > 10);

    // Samples table shows the before/after answers.
    h.state_mut().tab = Tab::Samples;
    h.run_ok();
    h.get_by_label("R-L before");
    h.get_by_label("extraction");

    // The demo has a holdout split and a retain-only model: the Privacy tab shows the audit
    // before and after, beside the retain-only model's AUCs.
    h.state_mut().tab = Tab::Privacy;
    h.run_ok();
    for label in [
        "retain-only model",
        "mia_min_k",
        "mia_reference",
        "privleak",
        "extraction_strength",
    ] {
        h.get_by_label(label);
    }
    h.get_by_label_contains("4 forget items against 4 holdout items");
    let after = record_privacy(&h.state().record);
    assert!(
        after.privleak.is_some() && after.auc.len() == 6,
        "{after:?}"
    );

    // Save model as… → a prompt with an editable destination → Browse… (the scripted dialog
    // answers) fills it → Save → a loadable checkpoint appears.
    h.get_by_label("💾 Save model as…").click();
    h.run_ok();
    assert!(
        h.state()
            .save_prompt
            .as_deref()
            .is_some_and(|p| p.contains("unlearned-")),
        "a default destination is offered: {:?}",
        h.state().save_prompt
    );
    h.get_by_label("Browse…").click();
    let answer = saved.display().to_string();
    step_until(
        &mut h,
        "the dialog's answer",
        Duration::from_secs(10),
        |a| a.save_prompt.as_deref() == Some(answer.as_str()),
    );
    h.get_by_label("Save").click();
    step_until(&mut h, "the save", Duration::from_secs(60), |a| {
        a.status.starts_with("Model saved")
    });
    let ckpt = mdu_workbench::Checkpoint::open(&saved).unwrap();
    ckpt.load::<mdu_workbench::device::CpuBackend>(
        &Default::default(),
        &mdu_workbench::checkpoint::MemoryBudget::unlimited("cpu"),
    )
    .unwrap();
    let run_dir = h.state().record.run_dir.clone().unwrap();

    // A restarted window lists the run in its history.
    let settings = h.state().settings.clone();
    let mut h2 = harness(WorkbenchApp::new(
        settings,
        Box::new(ScriptedDialogs::default()),
    ));
    step_until(&mut h2, "the history", Duration::from_secs(30), |a| {
        !a.history.is_empty()
    });
    let name = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(h2
        .state()
        .history
        .iter()
        .any(|e| e.name == name && e.finished));
    h2.state_mut().tab = Tab::History;
    h2.run_ok();
    h2.get_by_label(&name);
}

#[test]
fn stop_asks_first_then_stops_within_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = quick_settings(tmp.path().join("runs"), 100_000);
    settings.config.eval_before = false;
    settings.config.live_every = 0;
    let mut h = harness(WorkbenchApp::new(
        settings,
        Box::new(ScriptedDialogs::default()),
    ));
    step_until(&mut h, "the demo", Duration::from_secs(60), |a| {
        a.checkpoint.is_ok() && a.forget.is_ok() && a.retain.is_ok()
    });
    h.get_by_label("▶ Start").click();
    step_until(&mut h, "training steps", Duration::from_secs(120), |a| {
        a.record.loss.len() >= 2
    });
    h.get_by_label("⏹ Stop").click();
    h.run_ok();
    assert!(h.state().confirm_stop, "Stop asks first");
    assert!(h.state().is_running(), "and does not stop yet");
    h.get_by_label("Stop run").click();
    let asked = Instant::now();
    step_until(&mut h, "the stop", Duration::from_secs(30), |a| {
        !a.is_running()
    });
    assert_eq!(h.state().record.state, RunState::Stopped);
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "stopped after {:?}",
        asked.elapsed()
    );
}

#[test]
fn bad_inputs_show_one_readable_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("forget.jsonl");
    std::fs::write(&bad, "{\"question\": \"q\", \"answer\": \"a\"}\nnot json\n").unwrap();
    let mut h = harness(WorkbenchApp::new(
        quick_settings(tmp.path().join("runs"), 3),
        Box::new(ScriptedDialogs::new(vec![Some(bad.clone())])),
    ));
    step_until(&mut h, "the demo", Duration::from_secs(60), |a| {
        a.checkpoint.is_ok() && a.retain.is_ok()
    });
    // "Open…" of the forget set: the scripted dialog picks the malformed file.
    h.get_all_by_label("Open…").nth(1).unwrap().click();
    step_until(&mut h, "the file check", Duration::from_secs(30), |a| {
        a.forget.path_buf() == bad && a.forget.info.is_some()
    });
    h.get_by_label("▶ Start").click();
    h.run_ok();
    let errors = &h.state().errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("forget.jsonl") && errors[0].contains(":2"),
        "{}",
        errors[0]
    );
    assert!(!h.state().is_running());
    h.get_by_label("OK").click();
    h.run_ok();
    assert!(h.state().errors.is_empty());
}

#[test]
fn a_desktop_without_dialogs_is_told_once_to_type_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let dialogs = ScriptedDialogs {
        unavailable: true,
        ..Default::default()
    };
    let mut h = harness(WorkbenchApp::new(
        quick_settings(tmp.path().join("runs"), 3),
        Box::new(dialogs),
    ));
    step_until(&mut h, "the demo", Duration::from_secs(60), |a| {
        a.checkpoint.is_ok()
    });
    let errors: Vec<String> = h.state().errors.iter().cloned().collect();
    assert_eq!(
        errors,
        vec![mdu_workbench::gui::DIALOG_UNAVAILABLE.to_string()]
    );
    h.get_by_label("OK").click();
    h.run_ok();
    h.run_steps(3);
    assert!(h.state().errors.is_empty(), "said once");
}

/// The window, once its background job has listed the devices and run the CUDA probe.
fn with_devices_listed(tmp: &tempfile::TempDir) -> Harness<'static, WorkbenchApp> {
    settled_with(tmp, ScriptedDialogs::default())
}

/// The window on the demo with every background answer in, its file dialogs answering `dialogs`.
pub fn settled_with(
    tmp: &tempfile::TempDir,
    dialogs: ScriptedDialogs,
) -> Harness<'static, WorkbenchApp> {
    let mut h = harness(WorkbenchApp::new(
        quick_settings(tmp.path().join("runs"), 3),
        Box::new(dialogs),
    ));
    step_until(&mut h, "the device list", Duration::from_secs(60), |a| {
        a.cuda_unavailable.is_some() || a.devices.iter().any(|(d, _)| d.starts_with("cuda"))
    });
    // A click lands where the widget was last drawn: wait until the demo's files and every other
    // background answer are in, so that nothing moves the picker between the query and the click.
    step_until(
        &mut h,
        "the window to settle",
        Duration::from_secs(60),
        |a| a.is_settled(),
    );
    h
}

#[test]
fn the_device_picker_says_why_cuda_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = with_devices_listed(&tmp);
    // The picker is labelled by its "Device" label (which the query then leaves out); open it.
    // The setup panel scrolls; bring the picker into view first, as a person would.
    h.get_by_label("Device").scroll_to_me();
    h.run_ok();
    h.get_by_label("Device").click();
    h.run_ok();
    match mdu_workbench::device::cuda_devices() {
        Err(why) => {
            h.get_by_label(&format!("CUDA: unavailable, {why}"));
        }
        Ok(names) => {
            h.get_by_label(&format!("CUDA 0: {}", names[0]));
        }
    }
}

/// In a child process (the app's runtime set-up comes first, as in `mdu`): a demo run on lavapipe
/// shows kernel preparation in the status line.
fn gpu_kernel_status_child() {
    mdu_workbench::kernel_runtime::init();
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = quick_settings(tmp.path().join("runs"), 1);
    settings.config.device = "wgpu:cpu".into();
    let mut h = harness(WorkbenchApp::new(
        settings,
        Box::new(ScriptedDialogs::default()),
    ));
    step_until(&mut h, "the demo", Duration::from_secs(60), |a| {
        a.forget.is_ok()
    });
    h.state_mut().start();
    step_until(&mut h, "the kernel status", Duration::from_secs(300), |a| {
        a.status.starts_with("Preparing GPU kernels: ")
    });
    let status = h.state().status.clone();
    println!("CHILD STATUS: {status}");
    h.get_by_label(&format!("Status: {status}"));
    // Done. Leave at once, the engine's thread with it: a normal exit would run LLVM's exit-time
    // destructors under lavapipe's shader compiler, still busy on that thread, and abort.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the process; nothing of this process is used after it.
    unsafe { libc::_exit(0) };
}

#[test]
fn the_status_line_says_when_gpu_kernels_are_prepared() {
    if crate::common::is_child_test() {
        gpu_kernel_status_child();
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = crate::common::run_child_test(
        "gui::the_status_line_says_when_gpu_kernels_are_prepared",
        &[("XDG_CACHE_HOME", tmp.path().as_os_str())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // (The child leaves without libtest's summary: see its end.)
    let status = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD STATUS: ").map(|(_, status)| status))
        .unwrap_or_else(|| {
            panic!(
                "the child printed no status:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(status.contains(" compiled"), "{status}");
    assert!(status.contains("later runs reuse"), "{status}");
}

/// Without a graphics card the window says, in plain words, what is missing and that runs use the
/// processor; the device list here (no CUDA, lavapipe or nothing) is set as the CUDA probe tests
/// set it: a driver library that cannot be loaded.
#[test]
fn without_a_gpu_the_window_says_what_is_missing_and_that_the_cpu_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = with_devices_listed(&tmp);
    let no_driver = "no NVIDIA driver library could be loaded (searched libcuda.so, libcuda.so.1 and 15 other names; is the NVIDIA driver installed?)";
    let cpu_only = |software_vulkan: bool| {
        let mut list = vec![("auto".to_string(), "Automatic".to_string())];
        if software_vulkan {
            list.push(("wgpu:cpu".into(), "wgpu software: llvmpipe (Vulkan)".into()));
        }
        list.push(("cpu".into(), "CPU (ndarray)".into()));
        list
    };
    for software_vulkan in [true, false] {
        h.state_mut().devices = cpu_only(software_vulkan);
        h.state_mut().cuda_unavailable = Some(no_driver.into());
        h.run_steps(2);
        h.get_by_label_contains("No graphics card found: runs use the processor (CPU).");
        h.get_by_label_contains("No NVIDIA driver is installed.");
        let vulkan = if software_vulkan {
            "Only the software Vulkan driver is installed"
        } else {
            "No Vulkan driver is installed"
        };
        h.get_by_label_contains(vulkan);
    }
    // NVRTC missing is told apart from no driver.
    h.state_mut().cuda_unavailable =
        Some("no NVRTC library could be loaded (searched libnvrtc.so)".into());
    h.run_steps(2);
    h.get_by_label_contains("the CUDA toolkit's compiler (NVRTC) is missing");
    // With a GPU in the list there is nothing to say.
    h.state_mut()
        .devices
        .push(("wgpu:discrete:0".into(), "wgpu GPU: a card (Vulkan)".into()));
    h.run_steps(2);
    assert!(h
        .query_by_label_contains("No graphics card found")
        .is_none());
}

#[test]
fn the_setup_says_whether_a_training_step_fits_and_lora_shrinks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = with_devices_listed(&tmp);
    let plan_line = |h: &Harness<'static, WorkbenchApp>| {
        h.query_all_by_label_contains("One training step needs")
            .next()
            .and_then(|n| n.value())
    };
    step_until(&mut h, "the memory plan", Duration::from_secs(60), |a| {
        a.is_settled()
    });
    h.run_steps(2);
    let full = plan_line(&h).expect("the plan line next to the device picker");
    assert!(full.contains("fits"), "{full}");
    h.state_mut().settings.config.lora = Some(Default::default());
    h.run_steps(2);
    let lora = plan_line(&h).unwrap();
    eprintln!("plan: {full} / with LoRA: {lora}");
    assert_ne!(full, lora, "LoRA changes the plan");
    // The demo fits, so `auto` leaves checkpointing off; `on` shows in the line.
    assert!(!lora.contains("checkpointing"), "{lora}");
    h.state_mut().settings.config.checkpointing = mdu_workbench::unlearn::config::Checkpointing::On;
    h.run_steps(2);
    let checkpointed = plan_line(&h).unwrap();
    assert!(
        checkpointed.contains("with checkpointing"),
        "{checkpointed}"
    );
    assert_ne!(checkpointed, lora);
}

/// The last full evaluation's privacy audit.
fn record_privacy(
    record: &mdu_workbench::gui::series::RunRecord,
) -> mdu_workbench::eval::privacy::PrivacyReport {
    record
        .evals
        .iter()
        .rev()
        .find_map(|e| e.report.privacy.clone())
        .expect("a privacy audit")
}
