//! Native file and folder dialogs behind a small trait, so tests can answer them and the window
//! never waits for one (rfd runs on a worker thread; through the XDG desktop portal on Linux, which
//! not every machine has: the editable path fields work without it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::session::Pending;

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
    fn pick(&self, request: PickRequest) -> Pending<Option<PathBuf>>;
    /// True once a dialog could not be shown at all (the window then says to type paths).
    fn unavailable(&self) -> bool {
        false
    }
}

/// The platform's dialogs (rfd).
pub struct NativeDialogs;

/// rfd answers "no choice" both for Cancel and for a dialog that never opened (no portal). No
/// person cancels within this time, so an answer that fast means the dialog did not appear.
const NO_DIALOG_WITHIN: Duration = Duration::from_millis(250);
static DIALOG_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

impl Dialogs for NativeDialogs {
    fn unavailable(&self) -> bool {
        DIALOG_UNAVAILABLE.load(Ordering::Relaxed)
    }

    fn pick(&self, request: PickRequest) -> Pending<Option<PathBuf>> {
        Pending::spawn("dialog", move || {
            let asked = Instant::now();
            let answer = native_pick(request);
            if answer.is_none() && asked.elapsed() < NO_DIALOG_WITHIN {
                DIALOG_UNAVAILABLE.store(true, Ordering::Relaxed);
            }
            answer
        })
    }
}

fn native_pick(request: PickRequest) -> Option<PathBuf> {
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
}

/// Answers dialogs from a list, in order, and remembers what was asked (tests).
#[derive(Default)]
pub struct ScriptedDialogs {
    pub answers: Mutex<Vec<Option<PathBuf>>>,
    pub asked: Mutex<Vec<PickRequest>>,
    /// Acts like a desktop without a dialog portal.
    pub unavailable: bool,
}

impl ScriptedDialogs {
    pub fn new(answers: Vec<Option<PathBuf>>) -> Self {
        Self {
            answers: Mutex::new(answers),
            asked: Mutex::default(),
            unavailable: false,
        }
    }
}

impl Dialogs for ScriptedDialogs {
    fn unavailable(&self) -> bool {
        self.unavailable
    }

    fn pick(&self, request: PickRequest) -> Pending<Option<PathBuf>> {
        self.asked.lock().expect("not poisoned").push(request);
        let mut answers = self.answers.lock().expect("not poisoned");
        let answer = if answers.is_empty() {
            None
        } else {
            answers.remove(0)
        };
        Pending::ready(answer)
    }
}
