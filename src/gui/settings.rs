//! What the window remembers between sessions (eframe storage).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::unlearn::config::UnlearnConfig;

/// The eframe storage key of [`Settings`].
pub const SETTINGS_KEY: &str = "mdu-workbench-settings";

/// What survives a restart.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where run folders go (shown and changeable).
    pub runs_root: PathBuf,
    /// Recently opened folders, newest first.
    pub recent: Vec<PathBuf>,
    /// The setup of the last run (method, τ, learning rate, …).
    pub config: UnlearnConfig,
    pub smoothing: f64,
    /// Runs queued from the trade-off explorer.
    pub tradeoff_runs: Vec<PathBuf>,
    /// The folder holding `models/` and `data/tofu/`, where the paper presets look.
    pub data_root: PathBuf,
    /// The preset last chosen (an index into `unlearn::presets::PRESETS`).
    pub preset: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            runs_root: crate::unlearn::run_dir::default_runs_root(),
            recent: Vec::new(),
            config: UnlearnConfig::default(),
            smoothing: 0.6,
            tradeoff_runs: Vec::new(),
            data_root: std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from),
            preset: None,
        }
    }
}

impl Settings {
    /// Reads the stored settings; defaults when there are none or they do not parse.
    pub fn load(storage: Option<&dyn eframe::Storage>) -> Self {
        storage
            .and_then(|s| s.get_string(SETTINGS_KEY))
            .and_then(|t| serde_json::from_str::<Settings>(&t).ok())
            .unwrap_or_default()
    }

    pub fn store(&self, storage: &mut dyn eframe::Storage) {
        if let Ok(text) = serde_json::to_string(self) {
            storage.set_string(SETTINGS_KEY, text);
        }
    }

    /// Puts `folder` first in the recent list (at most 8).
    pub fn remember(&mut self, folder: PathBuf) {
        self.recent.retain(|r| *r != folder);
        self.recent.insert(0, folder);
        self.recent.truncate(8);
    }
}
