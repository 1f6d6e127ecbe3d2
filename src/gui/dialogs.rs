//! Native file and folder dialogs behind a small trait, so tests can answer them and the window
//! never waits for one (rfd runs on a worker thread; through the XDG desktop portal on Linux, which
//! not every machine has: the editable path fields work without it).

use std::path::PathBuf;
use std::sync::Mutex;

use super::job::Job;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickKind {
    /// An existing folder (a checkpoint).
    Folder,
    /// An existing file (TOFU JSON / JSON lines).
    File,
    /// A folder to create (Save model as…).
    NewFolder,
    /// A file to write (CSV, PNG).
    NewFile,
}

#[derive(Clone, Debug)]
pub struct PickRequest {
    pub kind: PickKind,
    pub title: String,
    pub start: Option<PathBuf>,
    /// (name, extensions) for file pickers.
    pub filters: Vec<(String, Vec<String>)>,
    pub file_name: Option<String>,
}

pub trait Dialogs: Send {
    fn pick(&self, request: PickRequest) -> Job<Option<PathBuf>>;
}

/// The platform's dialogs (rfd).
pub struct NativeDialogs;

impl Dialogs for NativeDialogs {
    fn pick(&self, request: PickRequest) -> Job<Option<PathBuf>> {
        Job::spawn("dialog", move || {
            let mut d = rfd::FileDialog::new().set_title(&request.title);
            if let Some(start) = &request.start {
                d = d.set_directory(start);
            }
            for (name, exts) in &request.filters {
                d = d.add_filter(name, exts);
            }
            if let Some(name) = &request.file_name {
                d = d.set_file_name(name);
            }
            match request.kind {
                PickKind::Folder | PickKind::NewFolder => d.pick_folder(),
                PickKind::File => d.pick_file(),
                PickKind::NewFile => d.save_file(),
            }
        })
    }
}

/// Answers dialogs from a list, in order, and remembers what was asked (tests).
#[derive(Default)]
pub struct ScriptedDialogs {
    pub answers: Mutex<Vec<Option<PathBuf>>>,
    pub asked: Mutex<Vec<PickRequest>>,
}

impl ScriptedDialogs {
    pub fn new(answers: Vec<Option<PathBuf>>) -> Self {
        Self {
            answers: Mutex::new(answers),
            asked: Mutex::default(),
        }
    }
}

impl Dialogs for ScriptedDialogs {
    fn pick(&self, request: PickRequest) -> Job<Option<PathBuf>> {
        self.asked.lock().expect("not poisoned").push(request);
        let mut answers = self.answers.lock().expect("not poisoned");
        let answer = if answers.is_empty() {
            None
        } else {
            answers.remove(0)
        };
        Job::ready(answer)
    }
}
