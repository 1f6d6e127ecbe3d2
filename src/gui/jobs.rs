//! Work in flight that the window polls: the active run, the Save model as… flow, exports.

use std::path::PathBuf;

use eframe::egui;

use super::actions::Export;
use super::plots::PlotKind;
use crate::session::{Pending, RunHandle};
use crate::unlearn::config::UnlearnConfig;
use crate::unlearn::cost::CostEstimate;

/// The run-config dialogs (`config_files.rs`) that have not answered yet.
#[derive(Default)]
pub struct ConfigDialogs {
    pub open: Option<Pending<Option<PathBuf>>>,
    pub save: Option<Pending<Option<PathBuf>>>,
    pub data_root: Option<Pending<Option<PathBuf>>>,
    /// The model folder whose defaults were last considered.
    pub defaults_for: String,
}

impl ConfigDialogs {
    pub fn is_pending(&self) -> bool {
        self.open.is_some() || self.save.is_some() || self.data_root.is_some()
    }
}

/// The time estimate of the setup (`cost_estimate.rs`): the config it was asked for, and the
/// probe in flight or its answer.
#[derive(Default)]
pub struct CostJob {
    pub asked_for: Option<UnlearnConfig>,
    pub pending: Option<Pending<Result<CostEstimate, String>>>,
    pub answer: Option<Result<CostEstimate, String>>,
}

pub struct ActiveRun {
    pub handle: RunHandle,
    pub from_queue: bool,
}

/// The Save model as… flow: the dialog behind Browse…, then the copy.
#[derive(Default)]
pub struct SaveState {
    pub dialog: Option<Pending<Option<PathBuf>>>,
    pub job: Option<Pending<Result<PathBuf, String>>>,
}

impl SaveState {
    pub fn is_busy(&self) -> bool {
        self.dialog.is_some() || self.job.is_some()
    }
}

/// Exports: the file dialog's answer, then (for a plot) the screenshot it is cut from.
#[derive(Default)]
pub struct ExportState {
    pub asked: Option<(Export, Pending<Option<PathBuf>>)>,
    pub png_pending: Option<(PlotKind, PathBuf)>,
    /// Where each plot was drawn in the last frame.
    pub plot_rects: Vec<(PlotKind, egui::Rect)>,
}

/// The Inside view (`inside.rs`): the traces, the request in flight, the chosen question.
pub struct InsideState {
    pub traces: Option<Result<crate::session::InsideTraces, String>>,
    pub job: Option<Pending<Result<crate::session::InsideTraces, String>>>,
    pub question: usize,
    /// Forget questions to trace.
    pub items: usize,
}

impl Default for InsideState {
    fn default() -> Self {
        Self {
            traces: None,
            job: None,
            question: 0,
            items: 24,
        }
    }
}
