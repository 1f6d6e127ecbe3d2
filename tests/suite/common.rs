use std::path::PathBuf;

use serde::Deserialize;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `tests/fixtures/reference/<name>.json`, written by scripts/make_fixtures.py.
#[derive(Deserialize)]
pub struct Reference {
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u8>>,
    pub logits_nomask: Vec<Vec<Vec<f32>>>,
    pub logits_mask: Vec<Vec<Vec<f32>>>,
    pub transformers_logits_nomask: Vec<Vec<Vec<f32>>>,
    pub transformers_logits_mask: Vec<Vec<Vec<f32>>>,
}

impl Reference {
    pub fn load(name: &str) -> Self {
        let path = fixture("reference").join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Rows of `true` where a key is padding.
    pub fn key_padding(&self) -> Vec<Vec<bool>> {
        self.attention_mask
            .iter()
            .map(|row| row.iter().map(|&m| m == 0).collect())
            .collect()
    }
}

pub fn flatten3(x: &[Vec<Vec<f32>>]) -> Vec<f32> {
    x.iter().flatten().flatten().copied().collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub const FIXTURES: [&str; 6] = [
    "llada_f32",
    "llada_bf16",
    "llada_sharded",
    "dream_gqa",
    "qwen3_a2d",
    "llada_moe",
];

/// Runs test `name` of this binary alone in a fresh process, with `envs` and `MDU_TEST_CHILD=1`:
/// a test that calls this for itself does its child's work when [`is_child_test`] holds. For what is process-wide: the
/// panic hook, CubeCL's configuration (fixed at the first use of a device), stderr.
pub fn run_child_test(name: &str, envs: &[(&str, &std::ffi::OsStr)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("MDU_TEST_CHILD", "1")
        .env_remove("MDU_KERNEL_CACHE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Whether this process is a child started by [`run_child_test`].
pub fn is_child_test() -> bool {
    std::env::var_os("MDU_TEST_CHILD").is_some()
}
