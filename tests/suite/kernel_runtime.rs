//! The GPU kernel runtime on lavapipe (`wgpu:cpu`): kernel-preparation counts in the CLI's events,
//! the tuning cache in the user's cache folder (a second process tunes nothing), and a failing
//! autotune candidate as one line without a backtrace while a real failure still ends the job.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{fixture, is_child_test, run_child_test};

fn mdu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mdu"))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// One-step `mdu unlearn` of the tiny fixture on lavapipe, with `cache` as the user's cache folder
/// and `work` (no Cargo.toml above it) as the working directory: its `kernels` events, and the keys
/// it ran autotune for (from its `MDU_KERNEL_LOG`).
fn unlearn_on_lavapipe(cache: &Path, work: &Path) -> (Vec<serde_json::Value>, Vec<String>) {
    let item = |q: &str, a: &str| {
        serde_json::json!({"question": q, "answer": a, "paraphrased_answer": a,
            "perturbed_answer": [format!("not {a}")]})
        .to_string()
    };
    let (forget, retain) = (work.join("forget.jsonl"), work.join("retain.jsonl"));
    std::fs::write(
        &forget,
        item("Who wrote the red book?", "Ana Voss wrote it."),
    )
    .unwrap();
    std::fs::write(
        &retain,
        item("What is two plus two?", "Two plus two is four."),
    )
    .unwrap();
    let run = work.join("run");
    let _ = std::fs::remove_dir_all(&run);
    let log = work.join("kernels.log");
    let _ = std::fs::remove_file(&log);
    let out = mdu()
        .arg("unlearn")
        .arg("--checkpoint")
        .arg(fixture("llada_f32"))
        .args([
            "--forget",
            "forget.jsonl",
            "--retain",
            "retain.jsonl",
            "--out",
            "run",
        ])
        .args(["--device", "wgpu:cpu", "--steps", "1", "--batch-size", "1"])
        .args(["--set", "live_every=0", "--set", "eval_mc_samples=1"])
        .current_dir(work)
        .env("XDG_CACHE_HOME", cache)
        .env("MDU_KERNEL_LOG", &log)
        .env_remove("MDU_KERNEL_CACHE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kernels: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "kernels")
        .collect();
    // Counts only grow within a run.
    let compiled: Vec<u64> = kernels
        .iter()
        .map(|e| e["compiled"].as_u64().unwrap())
        .collect();
    assert!(compiled.windows(2).all(|w| w[0] <= w[1]), "{compiled:?}");
    let tuned_keys = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" Tuning ").map(|(_, key)| key.to_string()))
        .collect();
    (kernels, tuned_keys)
}

/// Kernel preparation reaches the CLI as `kernels` events; the tuning results go to the user's
/// cache folder, and a second process (same device, same shapes) tunes nothing.
#[test]
fn kernel_preparation_is_reported_and_a_second_process_tunes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, work) = (tmp.path().join("cache"), tmp.path().join("work"));
    std::fs::create_dir_all(&work).unwrap();

    let (first, first_tuned) = unlearn_on_lavapipe(&cache, &work);
    let last = first.last().expect("no kernels event on stdout");
    assert_eq!(
        last["tuned"],
        first_tuned.len(),
        "the events count what the log shows"
    );
    assert!(last["compiled"].as_u64().unwrap() > 0, "{last}");
    assert!(
        last["tuned"].as_u64().unwrap() > 0,
        "lavapipe tunes matmuls: {last}"
    );
    let message = last["message"].as_str().unwrap();
    assert!(
        message.starts_with("Preparing GPU kernels: ")
            && message.contains("later runs reuse the tuning results kept in")
            && message.contains("mdu-workbench/kernels"),
        "{message}"
    );
    let kept = files_under(&cache.join("mdu-workbench/kernels/autotune"));
    assert!(!kept.is_empty(), "no tuning results under the cache folder");
    // Nothing but the run in the working directory (CubeCL's default would write ./target).
    assert!(!work.join("target").exists());

    let (second, second_tuned) = unlearn_on_lavapipe(&cache, &work);
    let last = second.last().expect("no kernels event on stdout");
    // Nothing the first process tuned is tuned again. (Autotune picks by timing, so the second
    // process can take a path whose matmul layout the first never ran, and tune that once: seen
    // here as 1 of 64.)
    let again: Vec<&String> = second_tuned
        .iter()
        .filter(|k| first_tuned.contains(k))
        .collect();
    assert!(again.is_empty(), "tuned again: {again:?}");
    assert!(
        second_tuned.len() * 8 <= first_tuned.len(),
        "{} tuning runs after {}",
        second_tuned.len(),
        first_tuned.len()
    );
    // wgpu (WGSL through the driver) keeps no compiled kernels between processes in CubeCL 0.10:
    // the second process compiles again. CUDA's PTX cache is the one that does; no GPU here.
    assert!(last["compiled"].as_u64().unwrap() > 0, "{last}");
}

static WORKING_CANDIDATE_RAN: AtomicUsize = AtomicUsize::new(0);
const PLANTED: &str = "planted autotune candidate failure";

/// In a child process: the app's runtime set-up, then a CubeCL autotune on lavapipe whose first
/// candidate panics (as burn-cubecl-fusion's failing candidates did on CUDA) and whose second
/// works; then one whose candidates all fail, inside `kernel_runtime::catch` as engine runs are.
fn planted_autotune_candidate_child() {
    use burn::backend::wgpu::{WgpuDevice, WgpuRuntime};
    use cubecl::tune::{LocalTuner, Tunable, TunableSet};
    use cubecl::Runtime;
    mdu_workbench::kernel_runtime::init();
    let client = WgpuRuntime::client(&WgpuDevice::Cpu);

    static TUNER: LocalTuner<String, String> = LocalTuner::new("mdu-planted-candidate");
    let set = TUNER.init(|| {
        TunableSet::<String, u32, ()>::new_cloning_inputs(|n: &u32| format!("planted-{n}"))
            .with(Tunable::new("fails", |_n: u32| -> Result<(), String> {
                panic!("{PLANTED}")
            }))
            .with(Tunable::new("works", |_n: u32| -> Result<(), String> {
                WORKING_CANDIDATE_RAN.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }))
    });
    let key = std::process::id();
    TUNER.execute(&"planted".to_string(), &client, set, key);
    assert!(WORKING_CANDIDATE_RAN.load(Ordering::SeqCst) > 0);
    let activity = mdu_workbench::kernel_runtime::snapshot();
    assert_eq!(activity.tuned, 1, "{activity:?}");
    assert!(activity.failed_on_device >= 1, "{activity:?}");
    println!("CHILD: the working candidate was used");

    // Every candidate fails: a real error. It must come back as a message, not unwind.
    static ALL_FAIL: LocalTuner<String, String> = LocalTuner::new("mdu-planted-all-fail");
    let outcome = mdu_workbench::kernel_runtime::catch(|| {
        let set = ALL_FAIL.init(|| {
            TunableSet::<String, u32, ()>::new_cloning_inputs(|n: &u32| format!("all-fail-{n}"))
                .with(Tunable::new("fails a", |_n: u32| -> Result<(), String> {
                    panic!("{PLANTED} (a)")
                }))
                .with(Tunable::new("fails b", |_n: u32| -> Result<(), String> {
                    panic!("{PLANTED} (b)")
                }))
        });
        ALL_FAIL.execute(&"all-fail".to_string(), &client, set, key);
    });
    let error = outcome.expect_err("an autotune whose candidates all fail is an error");
    println!("CHILD ERROR: {error}");
}

#[test]
fn a_failing_autotune_candidate_is_one_line_and_a_real_failure_an_error() {
    if is_child_test() {
        planted_autotune_candidate_child();
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = run_child_test(
        "kernel_runtime::a_failing_autotune_candidate_is_one_line_and_a_real_failure_an_error",
        &[
            ("XDG_CACHE_HOME", tmp.path().as_os_str()),
            // A backtrace would be printed with it, were any panic left to the default hook.
            ("RUST_BACKTRACE", "1".as_ref()),
        ],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run:\n{stdout}"
    );
    assert!(stdout.contains("CHILD: the working candidate was used"));
    // The failing candidate: one line on stderr (warm-up runs it three times), no backtrace.
    let noted: Vec<&str> = stderr.lines().filter(|l| l.contains(PLANTED)).collect();
    assert_eq!(
        noted.len(),
        3,
        "one line for the candidate, one per failing candidate of the second tuner:\n{stderr}"
    );
    assert!(
        noted
            .iter()
            .all(|l| l.starts_with("note: a GPU kernel failed")),
        "{stderr}"
    );
    for trace in ["panicked at", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(trace), "{trace:?} on stderr:\n{stderr}");
    }
    // The real failure came back as an error message naming what failed on the device.
    let error = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD ERROR: ").map(|(_, error)| error))
        .expect("the child printed its error");
    assert!(error.contains(PLANTED), "{error}");
}

/// A panic inside a run (here planted in the event sink at the run's first event, on the run's
/// thread, where a backend failure arrives as a panic) ends it like an error: a `failed` event
/// with the panic's message, and an error returned instead of unwinding through the caller.
#[test]
fn a_panic_inside_a_run_ends_it_with_a_failed_event() {
    use mdu_workbench::unlearn::config::UnlearnConfig;
    use mdu_workbench::unlearn::engine;
    use mdu_workbench::unlearn::events::{Event, StopFlag};
    let tmp = tempfile::tempdir().unwrap();
    let config = UnlearnConfig {
        checkpoint: Some(fixture("llada_f32")),
        forget: Some(fixture("llada_f32").join("missing-but-never-read.jsonl")),
        retain: Some(fixture("llada_f32").join("missing-but-never-read.jsonl")),
        device: "cpu".into(),
        ..Default::default()
    };
    let mut events = Vec::new();
    let mut planted = false;
    let mut sink = |event: Event| {
        if !planted {
            planted = true;
            panic!("planted failure inside the run");
        }
        events.push(event);
    };
    let result = engine::run(
        config,
        tmp.path().join("run"),
        false,
        &mut sink,
        &StopFlag::new(),
    );
    let error = result.expect_err("the run fails");
    assert!(
        format!("{error:#}").contains("planted failure inside the run"),
        "{error:#}"
    );
    match events.as_slice() {
        [Event::Failed { error }] => {
            assert!(
                error.starts_with("the compute backend failed: planted failure inside the run"),
                "{error}"
            )
        }
        other => panic!("expected one failed event, got {other:?}"),
    }
}
