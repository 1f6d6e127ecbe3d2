//! Evaluations of an unchanged model on unchanged files with unchanged settings give the same
//! numbers (temperature-0 sampling, seeded estimators), so a run's "before" evaluation and the
//! retain-only model's truth ratios are kept under the data directory and reused. The key covers
//! the model folder's files, the evaluated items, the settings and the device.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

/// FNV-1a, 64 bit.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn feed(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The cache key of evaluating the model in `model_dir` with `parts` (items, settings, device…).
/// Files up to 256 MB are hashed by content; larger ones (multi-GB shards) by size and mtime.
pub fn key(model_dir: &Path, parts: &[&dyn erased::Part]) -> Option<String> {
    let mut h = Fnv::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(model_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in files {
        h.feed(f.file_name()?.to_string_lossy().as_bytes());
        let meta = std::fs::metadata(&f).ok()?;
        if meta.len() <= 256 << 20 {
            h.feed(&std::fs::read(&f).ok()?);
        } else {
            h.feed(&meta.len().to_le_bytes());
            let mtime = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            h.feed(&mtime.as_nanos().to_le_bytes());
        }
    }
    for p in parts {
        h.feed(p.json().as_bytes());
    }
    h.feed(env!("CARGO_PKG_VERSION").as_bytes());
    Some(format!("{:016x}", h.0))
}

pub mod erased {
    /// Anything serialisable, as a key part.
    pub trait Part {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Part for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

static DIR_OVERRIDE: std::sync::RwLock<Option<PathBuf>> = std::sync::RwLock::new(None);

/// Keeps the cache in `dir` for the rest of the process instead of the data directory (tests).
pub fn set_dir(dir: PathBuf) {
    *DIR_OVERRIDE.write().unwrap_or_else(|e| e.into_inner()) = Some(dir);
}

fn dir() -> PathBuf {
    if let Some(dir) = DIR_OVERRIDE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        return dir;
    }
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("mdu-workbench")
        .join("eval-cache")
}

/// Where a reused evaluation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This machine's cache, from an earlier run.
    Cache,
    /// Recorded when the embedded demo was made.
    DemoRecord,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Cache => "reused from the evaluation cache",
            Source::DemoRecord => "recorded with the demo",
        })
    }
}

/// The cached value, else the one recorded with the embedded demo. `MDU_NO_EVAL_CACHE` turns both
/// off (cold benchmarks, recording).
pub fn load<T: DeserializeOwned>(kind: &str, key: &str) -> Option<(T, Source)> {
    if std::env::var_os("MDU_NO_EVAL_CACHE").is_some() {
        return None;
    }
    let cached = std::fs::read_to_string(dir().join(format!("{kind}-{key}.json")))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    match cached {
        Some(v) => Some((v, Source::Cache)),
        None => crate::demo::embedded::recorded_eval(kind, key)
            .and_then(|v| T::deserialize(v).ok())
            .map(|v| (v, Source::DemoRecord)),
    }
}

/// Best effort: a cache that cannot be written is only slower.
pub fn store<T: Serialize>(kind: &str, key: &str, value: &T) {
    if let Ok(text) = serde_json::to_string(value) {
        let _ =
            crate::data::write_atomic(&dir().join(format!("{kind}-{key}.json")), text.as_bytes());
    }
}
