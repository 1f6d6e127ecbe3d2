//! Ready-made run setups: the embedded demo and the paper's TOFU settings for LLaDA-8B-Instruct
//! and Dream-v0-Instruct-7B. The paper's are `configs/*.toml`, compiled in (an installed package
//! has no `configs/` folder); their paths (`../models/…`, `../data/tofu/…`) are placed under a
//! folder the user chooses, which holds `models/` and `data/tofu/`.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;

use super::config::UnlearnConfig;

/// One setup the window offers.
pub struct Preset {
    pub label: &'static str,
    /// The config file it is compiled from and its text (`None`: the demo's defaults).
    file: Option<(&'static str, &'static str)>,
    /// The model's repository on the Hugging Face hub.
    pub model_repo: Option<&'static str>,
}

/// The TOFU files' repository on the Hugging Face hub (a dataset).
pub const TOFU_REPO: &str = "locuslab/TOFU";

macro_rules! compiled {
    ($file:literal) => {
        Some(($file, include_str!(concat!("../../configs/", $file))))
    };
}

const LLADA: Option<&str> = Some("GSAI-ML/LLaDA-8B-Instruct");
const DREAM: Option<&str> = Some("Dream-org/Dream-v0-Instruct-7B");

pub const PRESETS: &[Preset] = &[
    Preset {
        label: "Embedded demo",
        file: None,
        model_repo: None,
    },
    Preset {
        label: "Paper: LLaDA-8B TOFU forget10",
        file: compiled!("llada8b_tofu_forget10.toml"),
        model_repo: LLADA,
    },
    Preset {
        label: "Paper: LLaDA-8B TOFU forget05",
        file: compiled!("llada8b_tofu_forget05.toml"),
        model_repo: LLADA,
    },
    Preset {
        label: "Paper: LLaDA-8B TOFU forget01",
        file: compiled!("llada8b_tofu_forget01.toml"),
        model_repo: LLADA,
    },
    Preset {
        label: "LLaDA-8B TOFU forget10 with LoRA",
        file: compiled!("llada8b_tofu_forget10_lora.toml"),
        model_repo: LLADA,
    },
    Preset {
        label: "Paper: Dream-7B TOFU forget10",
        file: compiled!("dream7b_tofu_forget10.toml"),
        model_repo: DREAM,
    },
    Preset {
        label: "Paper: Dream-7B TOFU forget05",
        file: compiled!("dream7b_tofu_forget05.toml"),
        model_repo: DREAM,
    },
    Preset {
        label: "Paper: Dream-7B TOFU forget01",
        file: compiled!("dream7b_tofu_forget01.toml"),
        model_repo: DREAM,
    },
];

/// The paper preset for forget10 on a model of this architecture ("LLaDA" or "Dream").
pub fn paper_preset_for(architecture: &str) -> Option<&'static Preset> {
    let file = match architecture {
        "LLaDA" => "llada8b_tofu_forget10.toml",
        "Dream" => "dream7b_tofu_forget10.toml",
        _ => return None,
    };
    PRESETS.iter().find(|p| p.file_name() == Some(file))
}

impl Preset {
    /// The file it is compiled from (`configs/<name>`), `None` for the demo.
    pub fn file_name(&self) -> Option<&'static str> {
        self.file.map(|(name, _)| name)
    }

    /// The preset's settings with every path under `root` (the folder holding `models/` and
    /// `data/`); the demo's defaults with `demo` set for the demo preset.
    pub fn config(&self, root: &Path) -> Result<UnlearnConfig> {
        let Some((name, text)) = self.file else {
            return Ok(UnlearnConfig {
                demo: true,
                ..UnlearnConfig::default()
            });
        };
        let mut config = UnlearnConfig::from_toml_str(text, &format!("configs/{name}"))?;
        for path in config.paths_mut() {
            *path = root.join(below_configs(path));
        }
        Ok(config)
    }

    /// What it expects under the chosen folder (`models/…`, `data/tofu/…`), each once, the
    /// model folder first; read from its config once per process (the window asks every frame).
    pub fn expects(&self) -> &'static [PathBuf] {
        static EXPECTED: OnceLock<Vec<(Option<&'static str>, Vec<PathBuf>)>> = OnceLock::new();
        let all = EXPECTED.get_or_init(|| {
            PRESETS
                .iter()
                .map(|p| (p.file_name(), p.read_expects()))
                .collect()
        });
        all.iter()
            .find(|(file, _)| *file == self.file_name())
            .map_or(&[], |(_, paths)| paths.as_slice())
    }

    fn read_expects(&self) -> Vec<PathBuf> {
        let Ok(mut config) = self.config(Path::new("")) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = Vec::new();
        for path in config.paths_mut() {
            if !out.contains(path) {
                out.push(path.clone());
            }
        }
        out
    }
}

/// A path of a file in `configs/` as seen from the folder above it: `../models/X` → `models/X`.
fn below_configs(path: &Path) -> PathBuf {
    let mut parts = path.components().peekable();
    if parts.peek() == Some(&Component::ParentDir) {
        parts.next();
    }
    parts.collect()
}
