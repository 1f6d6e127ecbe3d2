//! What a panel asks for. Panels draw and return actions; the window applies them after layout,
//! so no click changes state in the middle of a frame.

use std::path::PathBuf;

use super::plots::PlotKind;
use super::Tab;
use crate::data::QaItem;
use crate::unlearn::config::UnlearnConfig;

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start a run with the setup panel's inputs.
    Start,
    /// Ask whether to stop the active run.
    AskStop,
    /// Stop it (the answer to the question).
    Stop,
    KeepRunning,
    /// Fill the setup panel with the embedded demo's files.
    UseDemo,
    /// Fill every knob and path from `unlearn::presets::PRESETS[i]`.
    ApplyPreset(usize),
    /// Pick the folder holding `models/` and `data/` for the presets.
    BrowseDataRoot,
    /// Time a short probe of the setup and scale it to the whole run.
    EstimateCost,
    /// Read a run config (TOML) into the setup panel.
    OpenConfig,
    /// Write the setup panel as a run config (TOML).
    SaveConfig,
    SetRunsRoot(PathBuf),
    RescanHistory,
    /// Show a past run's curves and samples.
    OpenRun(PathBuf),
    /// Continue a stopped or crashed run from its newest checkpoint.
    ResumeRun(PathBuf),
    /// Draw another run dashed over the current one (`None`: none); `show` switches to Curves.
    Overlay {
        dir: Option<PathBuf>,
        show: bool,
    },
    Export(Export),
    /// Queue these runs (the trade-off explorer).
    Queue(Vec<UnlearnConfig>),
    /// A free question to the current model.
    Ask(String),
    /// Trace the denoising of this question before and after.
    Denoise(QaItem),
    /// Token-level KL traces of the first forget questions, before and after (the Inside view).
    TraceInside,
    /// Open the Save model as… prompt.
    SaveModel,
    BrowseSaveDestination,
    SaveTo(String),
    CancelSave,
    /// The front error was read.
    DismissError,
    ShowTab(Tab),
}

/// What an export writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    Csv,
    Png(PlotKind),
    /// The Inside view's traces, cell by cell.
    InsideCsv,
}
