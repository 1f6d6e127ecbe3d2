//! Run configs in the window: the presets (compiled in), **Open config…** and **Save config…**
//! (the same TOML as `mdu unlearn --config`), and the switch from the demo's defaults to the
//! paper's when a real model is loaded.

use std::path::PathBuf;

use super::app::WorkbenchApp;
use super::dialogs::{PickKind, PickRequest};
use crate::session::Pending;
use crate::unlearn::config::UnlearnConfig;
use crate::unlearn::presets::{paper_preset_for, PRESETS};

const TOML_FILTER: (&str, &str) = ("Run configs (TOML)", "toml");

impl WorkbenchApp {
    /// Every knob and path from preset `index`; the device stays as chosen.
    pub(super) fn apply_preset(&mut self, index: usize) {
        let Some(preset) = PRESETS.get(index) else {
            return;
        };
        match preset.config(&self.settings.data_root) {
            Ok(mut config) => {
                config.device = self.settings.config.device.clone();
                self.settings.preset = Some(index);
                self.apply_config(config);
                self.status = format!("Preset: {}", preset.label);
            }
            Err(e) => self.errors.push_back(format!("{e:#}")),
        }
    }

    /// `config` into the setup panel: its knobs, and its model and data paths into the fields
    /// (the demo's files when it names the demo).
    fn apply_config(&mut self, config: UnlearnConfig) {
        if config.demo {
            self.use_demo();
        } else {
            if let Some(p) = &config.checkpoint {
                self.checkpoint.set(p);
            }
            if let Some(p) = &config.forget {
                self.forget.set(p);
            }
            if let Some(p) = &config.retain {
                self.retain.set(p);
            }
        }
        // The model read next is the config's choice: no switch of defaults for it.
        self.config_dialogs.defaults_for = self.checkpoint.path.clone();
        self.settings.config = config;
    }

    pub(super) fn ask_open_config(&mut self) {
        self.config_dialogs.open = Some(self.dialogs.pick(PickRequest {
            kind: PickKind::File,
            title: "Open run config".into(),
            start: Some(self.settings.data_root.clone()),
            filters: vec![(TOML_FILTER.0.into(), vec![TOML_FILTER.1.into()])],
            file_name: None,
        }));
    }

    pub(super) fn ask_save_config(&mut self) {
        self.config_dialogs.save = Some(self.dialogs.pick(PickRequest {
            kind: PickKind::NewFile,
            title: "Save run config".into(),
            start: Some(self.settings.data_root.clone()),
            filters: vec![(TOML_FILTER.0.into(), vec![TOML_FILTER.1.into()])],
            file_name: Some("run.toml".into()),
        }));
    }

    pub(super) fn browse_data_root(&mut self) {
        self.config_dialogs.data_root = Some(self.dialogs.pick(PickRequest {
            kind: PickKind::Folder,
            title: "Folder with models/ and data/".into(),
            start: Some(self.settings.data_root.clone()),
            filters: vec![],
            file_name: None,
        }));
    }

    /// The setup panel as a run config: its knobs and the three chosen paths (or `demo = true`).
    pub fn config_as_set_up(&self) -> UnlearnConfig {
        let mut config = self.settings.config.clone();
        if self.inputs_are_demo() {
            config.demo = true;
            (config.checkpoint, config.forget, config.retain) = (None, None, None);
        } else {
            config.demo = false;
            let path = |p: PathBuf| (!p.as_os_str().is_empty()).then_some(p);
            config.checkpoint = path(self.checkpoint.path_buf());
            config.forget = path(self.forget.path_buf());
            config.retain = path(self.retain.path_buf());
        }
        config
    }

    /// Answers of the dialogs above, and the switch of defaults; true while one is pending.
    pub(super) fn poll_config_files(&mut self) -> bool {
        let answer = |job: &mut Option<Pending<Option<PathBuf>>>| {
            let answer = job.as_mut()?.poll()?;
            *job = None;
            answer
        };
        if let Some(path) = answer(&mut self.config_dialogs.open) {
            match UnlearnConfig::from_toml_file(&path) {
                Ok(config) => {
                    self.settings.preset = None;
                    self.apply_config(config);
                    self.status = format!("Config read from {}", path.display());
                }
                Err(e) => self.errors.push_back(format!("{e:#}")),
            }
        }
        if let Some(path) = answer(&mut self.config_dialogs.save) {
            let text = self.config_as_set_up().to_toml();
            match crate::data::write_atomic(&path, text.as_bytes()) {
                Ok(()) => self.status = format!("Config written to {}", path.display()),
                Err(e) => self
                    .errors
                    .push_back(format!("{}: cannot write: {e}", path.display())),
            }
        }
        if let Some(root) = answer(&mut self.config_dialogs.data_root) {
            self.settings.data_root = root;
            if let Some(index) = self.settings.preset.filter(|&i| i > 0) {
                self.apply_preset(index);
            }
        }
        self.switch_defaults_for_model();
        self.config_dialogs.is_pending()
    }

    /// A real model read while every knob is still the demo's: the knobs become the paper's for
    /// its architecture (the paths and device stay), and the status line says so.
    fn switch_defaults_for_model(&mut self) {
        let Some(Ok(info)) = &self.checkpoint.info else {
            return;
        };
        if self.config_dialogs.defaults_for == self.checkpoint.path {
            return;
        }
        self.config_dialogs.defaults_for = self.checkpoint.path.clone();
        if self.inputs_are_demo()
            || self.settings.config.knobs() != UnlearnConfig::default().knobs()
        {
            return;
        }
        let Some(Ok(paper)) =
            paper_preset_for(&info.architecture).map(|p| p.config(&self.settings.data_root))
        else {
            return;
        };
        self.settings.config = UnlearnConfig {
            demo: false,
            ..self.settings.config.with_knobs(&paper)
        };
        self.status = format!(
            "{} model: the demo's settings were replaced by the paper's (learning rate 1e-5, batch 4 × 4, 128 Monte-Carlo samples, paper generation); the Embedded demo preset brings the demo's back.",
            info.architecture
        );
    }
}
