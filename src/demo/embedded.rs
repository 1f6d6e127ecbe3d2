//! The demo compiled into the binary (`assets/demo/`): the memorised model, the retain-only
//! model, the data files and the recorded scores. [`unpack`] writes them once into the platform's
//! data directory (content-addressed, atomically) so every code path can treat the demo like any
//! checkpoint folder on disk.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

#[cfg(feature = "demo")]
macro_rules! asset {
    ($path:literal) => {
        (
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/", $path)) as &[u8],
        )
    };
}

/// Every embedded file, by its path under `assets/demo/`. Builds without the `demo` feature (the
/// slim headless binary for GPU machines) embed nothing.
#[cfg(not(feature = "demo"))]
pub const FILES: &[(&str, &[u8])] = &[];
#[cfg(feature = "demo")]
pub const FILES: &[(&str, &[u8])] = &[
    asset!("model/config.json"),
    asset!("model/model.safetensors"),
    asset!("model/tokenizer.json"),
    asset!("model/tokenizer_config.json"),
    asset!("model/special_tokens_map.json"),
    asset!("retain_model/config.json"),
    asset!("retain_model/model.safetensors"),
    asset!("retain_model/tokenizer.json"),
    asset!("retain_model/tokenizer_config.json"),
    asset!("retain_model/special_tokens_map.json"),
    asset!("data/forget.jsonl"),
    asset!("data/retain.jsonl"),
    asset!("data/holdout.jsonl"),
    asset!("data/retain_eval.jsonl"),
    asset!("data/world_facts.jsonl"),
    asset!("data/real_people.jsonl"),
    asset!("data/world_facts_eval.jsonl"),
    asset!("data/real_people_eval.jsonl"),
    asset!("scores.json"),
    asset!("eval_record.json"),
    asset!("README.md"),
];

/// The evaluations recorded when the demo was made (`scripts/record_demo_eval.sh`): the default
/// "before" evaluation and privacy audit of the demo model and the retain-only model's truth
/// ratios and privacy-audit statistics, under the keys
/// the evaluation cache gives them. Temperature-0 generation and seeded estimators make them what
/// a fresh evaluation computes (tested), so a first demo run skips about a minute of evaluation.
pub fn recorded_eval(kind: &str, key: &str) -> Option<&'static serde_json::Value> {
    static RECORD: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> =
        std::sync::OnceLock::new();
    RECORD
        .get_or_init(|| {
            let bytes = FILES
                .iter()
                .find(|(name, _)| *name == "eval_record.json")
                .map(|(_, b)| *b)
                .unwrap_or_default();
            serde_json::from_slice(bytes).unwrap_or_default()
        })
        .get(&format!("{kind}-{key}"))
}

/// Paths of the unpacked demo.
#[derive(Clone, Debug)]
pub struct DemoPaths {
    pub root: PathBuf,
    pub model: PathBuf,
    pub retain_model: PathBuf,
    pub forget: PathBuf,
    pub retain: PathBuf,
    pub retain_eval: PathBuf,
    /// People the demo model never saw, asked the forget split's questions (privacy audits).
    pub holdout: PathBuf,
    pub world_facts: PathBuf,
    pub real_people: PathBuf,
    /// The utility items a run evaluates (one question per fact).
    pub world_facts_eval: PathBuf,
    pub real_people_eval: PathBuf,
    pub scores: PathBuf,
}

impl DemoPaths {
    fn at(root: PathBuf) -> Self {
        let data = root.join("data");
        Self {
            model: root.join("model"),
            retain_model: root.join("retain_model"),
            forget: data.join("forget.jsonl"),
            retain: data.join("retain.jsonl"),
            retain_eval: data.join("retain_eval.jsonl"),
            holdout: data.join("holdout.jsonl"),
            world_facts: data.join("world_facts.jsonl"),
            real_people: data.join("real_people.jsonl"),
            world_facts_eval: data.join("world_facts_eval.jsonl"),
            real_people_eval: data.join("real_people_eval.jsonl"),
            scores: root.join("scores.json"),
            root,
        }
    }
}

/// FNV-1a over every embedded file: the unpacked folder's name, so a new build never reuses an
/// old demo and an unchanged one is unpacked once.
fn content_hash() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, bytes) in FILES {
        for b in name.as_bytes().iter().chain(*bytes) {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Unpacks the demo (once) and returns its paths.
pub fn unpack() -> Result<DemoPaths> {
    if FILES.is_empty() {
        anyhow::bail!(
            "this build has no embedded demo (built without the `demo` feature); \
             pass a checkpoint folder and data files instead"
        );
    }
    let base = dirs::data_dir()
        .map(|d| d.join("mdu-workbench"))
        .unwrap_or_else(|| std::env::temp_dir().join("mdu-workbench"));
    unpack_into(&base).or_else(|_| unpack_into(&std::env::temp_dir().join("mdu-workbench")))
}

/// Unpacks the demo under `base/demo-<hash>/` unless it is already there.
pub fn unpack_into(base: &Path) -> Result<DemoPaths> {
    let root = base.join(format!("demo-{:016x}", content_hash()));
    if root.join(".complete").exists() {
        return Ok(DemoPaths::at(root));
    }
    let tmp = base.join(format!(".demo-partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let write = || -> Result<()> {
        for (name, bytes) in FILES {
            let path = tmp.join(name);
            std::fs::create_dir_all(path.parent().expect("files live in folders"))?;
            std::fs::write(&path, bytes)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        std::fs::write(tmp.join(".complete"), b"")?;
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })?;
    match std::fs::rename(&tmp, &root) {
        Ok(()) => {}
        // Another process unpacked it first: use theirs.
        Err(_) if root.join(".complete").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => {
            return Err(e).with_context(|| format!("{}: cannot unpack the demo", root.display()))
        }
    }
    Ok(DemoPaths::at(root))
}
