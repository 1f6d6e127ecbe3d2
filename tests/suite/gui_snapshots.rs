//! Snapshot tests of the window's main views, rendered with wgpu (lavapipe on CI) and compared with
//! the committed PNGs in `tests/snapshots/`. Everything drawn comes from committed inputs: the
//! event stream (`events.jsonl`, as `mdu unlearn` printed it) and per-item files of a real demo run, the settings and summaries
//! of real sweep runs (`tests/fixtures/gui/runs/`, made by `scripts/gui_fixtures.sh`), and the
//! embedded demo model for the denoising traces (greedy sampler, deterministic). The clock is
//! pinned, so playback advances only when the test moves it. Only the tab area is drawn: the
//! setup panel and status bar show machine-specific paths and adapters.
//!
//! After an intended change of the views: `UPDATE_SNAPSHOTS=1 cargo test --test suite gui_snapshots`
//! and look at the new PNGs before committing them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};

use super::gui::step_until;
use mdu_workbench::gui::dialogs::ScriptedDialogs;
use mdu_workbench::gui::series::{rouge_recall, RunRecord, RunState};
use mdu_workbench::gui::{Settings, Tab, WorkbenchApp};
use mdu_workbench::unlearn::events::Event;

const RUNS: &str = "tests/fixtures/gui/runs";
/// The run whose event log drives the curves and samples views.
const LIVE_RUN: &str = "mdu-tau0-demo";
/// The sweep runs the τ explorer plots (all at lr 2e-4, seed 0; NPO at its picked 4e-4).
const TRADEOFF: [&str; 6] = [
    "mdu-tau0-lr2e-4-seed0",
    "mdu-tau0.25-lr2e-4-seed0",
    "mdu-tau0.5-lr2e-4-seed0",
    "mdu-tau1-lr2e-4-seed0",
    "ga-lr2e-4-seed0",
    "npo-lr4e-4-seed0",
];

fn app() -> WorkbenchApp {
    let settings = Settings {
        runs_root: PathBuf::from(RUNS),
        tradeoff_runs: TRADEOFF.iter().map(|r| Path::new(RUNS).join(r)).collect(),
        ..Default::default()
    };
    let mut app = WorkbenchApp::new(settings, Box::new(ScriptedDialogs::default()));
    app.fixed_clock = Some(0.0);
    app
}

fn harness(app: WorkbenchApp) -> Harness<'static, WorkbenchApp> {
    let h = Harness::builder()
        .with_size([1100.0, 720.0])
        .wgpu()
        .build_ui_state(|ui, app: &mut WorkbenchApp| app.show_tab(ui), app);
    // Debug builds outline a rect whose widget id differs from the previous pass's. egui_plot's
    // axis hover areas take auto ids, which shift for one pass when a replay adds series at
    // once; the outline then depends on the pass before, not on the view.
    h.ctx
        .all_styles_mut(|s| s.debug.warn_if_rect_changes_id = false);
    h
}

/// Steps until `done` holds (the demo unpacking, history scan and traces run on worker threads),
/// then until the window is idle.
fn settle(
    h: &mut Harness<'static, WorkbenchApp>,
    what: &str,
    done: impl Fn(&WorkbenchApp) -> bool,
) {
    step_until(h, what, Duration::from_secs(300), done);
    h.run_ok();
}

/// Shows `tab` and lets the layout settle: egui sizes some things (plot axes, table rows) from
/// the previous frame, as a real window does over its first frames.
fn show(h: &mut Harness<'static, WorkbenchApp>, tab: Tab) {
    h.state_mut().tab = tab;
    h.run_steps(4);
    h.run_ok();
}

/// The engine's events of the live run, in the order they arrived.
fn recorded_events() -> Vec<Event> {
    let text = std::fs::read_to_string(Path::new(RUNS).join(LIVE_RUN).join("events.jsonl"))
        .expect("the committed event log");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every line of events.jsonl is an event"))
        .collect()
}

/// A tolerance for renderer differences (lavapipe versions), strict enough that a moved widget,
/// a changed label or a missing curve fails.
fn options() -> SnapshotOptions {
    SnapshotOptions::new()
        .threshold(0.6)
        .failed_pixel_count_threshold(60)
}

#[test]
fn main_views_match_their_snapshots() {
    let mut h = harness(app());
    settle(&mut h, "the history scan and the demo", |a| {
        a.history.len() == TRADEOFF.len() + 1 && a.forget.is_ok()
    });

    // Curves, mid-run: the first half of the event log as it arrived.
    let events = recorded_events();
    let half = events
        .iter()
        .position(|e| matches!(e, Event::Step { step, .. } if *step == 50))
        .expect("the log has step 50");
    for e in events[..=half].iter().cloned() {
        h.state_mut().record.apply(e);
    }
    assert_eq!(h.state().record.state, RunState::Running);
    assert_eq!(h.state().record.loss.len(), 50);
    show(&mut h, Tab::Curves);
    h.get_by_label("Smoothing (EMA)");
    h.snapshot_options("curves_running", &options());

    // Curves, finished: the rest of the log, then the per-item files the run wrote.
    for e in events[half + 1..].iter().cloned() {
        h.state_mut().record.apply(e);
    }
    let live = h.state().record.clone();
    assert_eq!(live.state, RunState::Finished);
    // Opening the run folder (as History does) rebuilds the same curves and markers.
    let dir = Path::new(RUNS).join(LIVE_RUN);
    let reopened = RunRecord::from_run_dir(&dir).unwrap();
    assert_eq!(reopened.loss, live.loss);
    for split in ["forget", "retain"] {
        for label in ["live", "full"] {
            assert_eq!(
                reopened.eval_series(split, label, rouge_recall),
                live.eval_series(split, label, rouge_recall),
                "{split} {label}"
            );
        }
    }
    assert_eq!(live.eval_series("forget", "full", rouge_recall).len(), 2);
    h.state_mut().open_run(&dir);
    assert_eq!(h.state().record.state, RunState::Finished);
    show(&mut h, Tab::Curves);
    h.snapshot_options("curves_finished", &options());

    show(&mut h, Tab::Samples);
    h.get_by_label("R-L before");
    h.snapshot_options("samples", &options());

    show(&mut h, Tab::Tradeoff);
    h.snapshot_options("tradeoff", &options());

    // The Privacy tab, with the audits of a demo run (tests/fixtures/gui/privacy.json) attached
    // to this run's full evaluations.
    let audits: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/gui/privacy.json").unwrap())
            .unwrap();
    let full: Vec<usize> = (0..h.state().record.evals.len())
        .filter(|&i| h.state().record.evals[i].label == "full")
        .collect();
    for (&i, when) in full.iter().zip(["before", "after"]) {
        h.state_mut().record.evals[i].report.privacy =
            Some(serde_json::from_value(audits[when].clone()).unwrap());
    }
    show(&mut h, Tab::Privacy);
    h.get_by_label("privleak");
    h.snapshot_options("privacy", &options());

    show(&mut h, Tab::History);
    h.get_by_label("7 runs in tests/fixtures/gui/runs");
    h.snapshot_options("history", &options());
}

#[test]
fn denoising_view_plays_on_the_pinned_clock_and_matches_its_snapshot() {
    let mut h = harness(app());
    settle(&mut h, "the demo", |a| a.forget.is_ok() && a.demo.is_some());
    // The demo's retain-only model stands in for an unlearned one (it never saw the forget set).
    let retain_model = h.state().demo.as_ref().unwrap().retain_model.clone();
    h.state_mut().record.model_dir = Some(retain_model);
    h.state_mut().tab = Tab::Denoising;
    h.run_ok();
    h.get_by_label("Denoise").click();
    settle(&mut h, "both traces", |a| {
        a.denoise.before.is_some() && a.denoise.after.is_some()
    });
    let frames = match (&h.state().denoise.before, &h.state().denoise.after) {
        (Some(Ok(b)), Some(Ok(a))) => b.frames.len().max(a.frames.len()),
        other => panic!("traces failed: {other:?}"),
    };
    assert!(frames > 3, "a trace has one frame per unmasking step");

    // Play advances one frame per 0.25 s of the pinned clock, and only then.
    h.get_by_label("▶ Play").click();
    h.run_ok();
    assert_eq!(h.state().denoise.frame, 0, "the clock has not moved");
    h.state_mut().fixed_clock = Some(0.3);
    h.step();
    assert_eq!(h.state().denoise.frame, 1);
    h.state_mut().fixed_clock = Some(0.6);
    h.step();
    assert_eq!(h.state().denoise.frame, 2);
    h.get_by_label("⏸ Pause").click();
    h.run_ok();
    h.state_mut().fixed_clock = Some(5.0);
    h.run_ok();
    assert_eq!(h.state().denoise.frame, 2, "paused");
    h.get_by_label("Step ▶|").click();
    h.run_steps(4);
    assert_eq!(h.state().denoise.frame, 3);
    h.snapshot_options("denoising", &options());
}

/// The Inside view, driven by committed traces (`scripts/inside_check.sh`: the demo's starting
/// model and its MDU τ = 0 model on four forget questions) and the KL-per-role events of that run.
#[test]
fn inside_view_matches_its_snapshot() {
    use mdu_workbench::inside::cli::read_trace;
    use mdu_workbench::session::InsideTraces;
    let mut h = harness(app());
    settle(&mut h, "the demo", |a| a.forget.is_ok() && a.demo.is_some());
    let dir = Path::new("tests/fixtures/gui/inside");
    let traces = InsideTraces {
        before: read_trace(&dir.join("before.jsonl")).unwrap(),
        after: read_trace(&dir.join("after.jsonl")).unwrap(),
        after_along: read_trace(&dir.join("after_along.jsonl")).unwrap(),
    };
    assert_eq!((traces.before.len(), traces.after.len()), (4, 4));
    h.state_mut().inside.traces = Some(Ok(traces));
    let events = std::fs::read_to_string(dir.join("role_kl.jsonl")).unwrap();
    for line in events.lines() {
        let event: Event = serde_json::from_str(line).unwrap();
        h.state_mut().record.apply(event);
    }
    assert!(
        h.state().record.role_kl.len() >= 5,
        "a point per live evaluation"
    );
    show(&mut h, Tab::Inside);
    h.get_by_label("Mean KL to the target per token role");
    h.get_by_label("Convergence: mean KL per role on the live forget items");
    h.snapshot_options("inside", &options());
    // The view's CPU cost per frame (layout and painting commands, not the GPU): printed for the
    // record (results/inside/), not asserted — a test is no benchmark.
    let mut times = Vec::new();
    for _ in 0..30 {
        let start = std::time::Instant::now();
        h.step();
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    eprintln!(
        "inside view frame: median {:.2} ms, max {:.2} ms over 30 frames",
        times[15], times[29]
    );
}

/// The Inside tab's button through the session: the starting model and a second model (the demo's
/// retain-only model standing in for an unlearned one) on the first forget questions, and the
/// second one along the first one's paths, token for token.
#[test]
fn inside_traces_come_from_the_session_when_asked() {
    let mut h = harness(app());
    settle(&mut h, "the demo", |a| a.forget.is_ok() && a.demo.is_some());
    let retain_model = h.state().demo.as_ref().unwrap().retain_model.clone();
    h.state_mut().record.model_dir = Some(retain_model);
    h.state_mut().inside.items = 2;
    h.state_mut().tab = Tab::Inside;
    h.run_ok();
    h.get_by_label("Trace before and after").click();
    settle(&mut h, "the traces", |a| a.inside.traces.is_some());
    let traces = match &h.state().inside.traces {
        Some(Ok(t)) => t.clone(),
        other => panic!("the traces failed: {other:?}"),
    };
    assert_eq!(
        (
            traces.before.len(),
            traces.after.len(),
            traces.after_along.len()
        ),
        (2, 2, 2)
    );
    for (before, along) in traces.before.iter().zip(&traces.after_along) {
        assert_eq!((&before.ids, &before.roles), (&along.ids, &along.roles));
        assert!(before.steps.iter().flatten().any(|c| c.kl.is_some()));
    }
    // The demo run's τ is 0 unless a run says otherwise: the target is uniform, the anchor kept.
    assert!(traces.before.iter().all(|t| t.tau == 0.0));
    assert!(traces.before[0].steps[0][0].kl_anchor.is_some());
}
