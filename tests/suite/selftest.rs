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
            "forward_qwen3_a2d",
            "forward_llada_moe",
            "mdu_step",
            "masked_kl"
        ]
    );
    for r in &results {
        assert!(r.pass, "{r:?}");
        assert!(r.max_rel_err.is_finite(), "{r:?}");
    }
    assert!(results[5].detail.contains("kernel"), "{:?}", results[5]);
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
    assert_eq!(lines.len(), 6, "{lines:?}");
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
    assert_eq!(lines.len(), 6, "{lines:?}");
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

#[test]
fn cuda_is_offered_only_when_the_probe_passes_and_refused_with_its_reason() {
    use mdu_workbench::device::{cuda_devices, device_help, list_devices};
    match cuda_devices() {
        Err(why) => {
            let err = DeviceChoice::parse("cuda:0").unwrap_err();
            assert!(err.contains(&why), "{err}");
            assert!(device_help().contains(&why));
            assert!(list_devices()
                .iter()
                .all(|(d, _)| !d.to_string().starts_with("cuda")));
        }
        Ok(names) => {
            assert!(!names.is_empty());
            assert!(DeviceChoice::parse("cuda:0").is_ok());
            assert!(DeviceChoice::parse(&format!("cuda:{}", names.len())).is_err());
        }
    }
}

#[test]
fn a_library_that_is_not_the_cuda_driver_is_reported_not_a_crash() {
    // Something named libcuda.so and libnvrtc.so that is not CUDA (here the C math library), and
    // headers where CUDA_PATH points: the probe gets as far as cuInit, whose symbol is missing.
    // cudarc panics there; `mdu devices` must still list the other devices and say why.
    let dir = tempfile::tempdir().unwrap();
    let not_cuda = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib64/libm.so.6"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a libm.so.6 to stand in for the driver");
    for name in ["libcuda.so", "libnvrtc.so"] {
        std::fs::copy(not_cuda, dir.path().join(name)).unwrap();
    }
    std::fs::create_dir(dir.path().join("include")).unwrap();
    std::fs::write(dir.path().join("include/cuda_fp16.h"), "").unwrap();
    let out = mdu()
        .arg("devices")
        .env("LD_LIBRARY_PATH", dir.path())
        .env("CUDA_PATH", dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("cpu\tCPU (ndarray)"), "{stdout}");
    assert!(
        stdout.contains("(cuda unavailable: the CUDA probe failed: Missing symbol cuInit"),
        "{stdout}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
