//! `mdu selftest`: the GPU parity checks, run here on lavapipe (software Vulkan through wgpu, the
//! same code path as a hardware adapter), and the `--gpu` entry on a machine without a GPU.

use std::process::Command;

use burn::backend::wgpu::WgpuDevice;
use mdu_workbench::device::DeviceChoice;
use mdu_workbench::kernels::reference::worst_relative;
use mdu_workbench::selftest::{check_device, gpu_devices, tolerance};

fn mdu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mdu"))
}

/// Runs `mdu selftest ARGS`, asserts it succeeded, and returns its stderr and its JSON lines.
fn selftest_lines(args: &[&str]) -> (String, Vec<serde_json::Value>) {
    let out = mdu().arg("selftest").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (stderr, lines)
}

#[test]
fn parity_checks_pass_on_lavapipe_and_the_kl_runs_the_kernel() {
    let results = check_device(&DeviceChoice::Wgpu(WgpuDevice::Cpu));
    let names: Vec<&str> = results.iter().map(|r| r.check.as_str()).collect();
    assert_eq!(
        names,
        [
            "forward_llada",
            "forward_dream_gqa",
            "mdu_step",
            "masked_kl"
        ]
    );
    for r in &results {
        assert!(r.pass, "{r:?}");
        assert!(r.max_rel_err.is_finite(), "{r:?}");
    }
    assert!(results[3].detail.contains("kernel"), "{:?}", results[3]);
}

#[test]
fn a_wrong_answer_fails_the_check() {
    // The comparison the checks use: an error of 2·tolerance in one of 1000 values must fail.
    let want: Vec<f64> = (0..1000).map(|i| (i as f64).sin()).collect();
    let mut got: Vec<f32> = want.iter().map(|&a| a as f32).collect();
    let tol = tolerance(mdu_workbench::device::Precision::F32);
    assert!(worst_relative(&got, &want).0 <= tol);
    got[500] += (2.0 * tol * (1.0 + want[500].abs())) as f32;
    let (err, at) = worst_relative(&got, &want);
    assert!(err > tol && at == 500, "{err} at {at}");
    got[7] = f32::NAN;
    assert_eq!(worst_relative(&got, &want).0, f64::INFINITY);
}

#[test]
fn selftest_cli_prints_one_json_line_per_check() {
    let (_, lines) = selftest_lines(&["--device", "wgpu:cpu", "--bench", "none"]);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines
        .iter()
        .all(|l| l["pass"] == true && l["device"] == "wgpu:cpu"));
}

#[test]
fn half_precision_storage_passes_the_checks_or_is_refused_with_a_note() {
    // f16 weights and activations with f32 softmax, KL, losses and AdamW moments: the mixed
    // precision path CUDA's bf16 takes, on the one half type lavapipe offers.
    let out = mdu()
        .args([
            "selftest",
            "--device",
            "wgpu:cpu",
            "--precision",
            "f16",
            "--bench",
            "none",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines {
        assert_eq!(line["pass"], true, "{line}");
        if line["precision"] == "f16" {
            let want = if line["check"] == "masked_kl" {
                1e-5
            } else {
                1e-2
            };
            assert_eq!(line["tolerance"].as_f64(), Some(want), "{line}");
        } else {
            assert_eq!(line["precision"], "f32");
            assert!(stderr.contains("F16 storage is not available"), "{stderr}");
        }
    }
    // f16 really changes the numbers: the forward is no longer f32-exact.
    if lines[0]["precision"] == "f16" {
        assert!(
            lines[0]["max_rel_err"].as_f64().unwrap() > 1e-5,
            "{}",
            lines[0]
        );
    }
}

#[test]
fn selftest_gpu_says_what_it_found() {
    let out = mdu()
        .args(["selftest", "--gpu", "--bench", "none"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if gpu_devices().is_empty() {
        // This machine (CI): no CUDA and only a software adapter, which --gpu does not count.
        assert!(!out.status.success());
        assert!(stderr.contains("no GPU found"), "{stderr}");
        assert!(stderr.contains("CUDA is unavailable ("), "{stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "one line, no panic trace: {stderr}"
        );
    } else {
        assert!(out.status.success(), "{stderr}");
    }
}
