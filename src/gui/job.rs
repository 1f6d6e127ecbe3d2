//! Work the window must not wait for (reading a checkpoint's header, previewing a data file,
//! listing devices, a file dialog) runs on a short-lived thread; the window polls the result
//! each frame.

use std::sync::mpsc::{channel, Receiver, TryRecvError};

pub struct Job<T> {
    rx: Option<Receiver<T>>,
}

impl<T: Send + 'static> Job<T> {
    pub fn spawn(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Self {
        let (tx, rx) = channel();
        let spawned = std::thread::Builder::new()
            .name(format!("mdu-{name}"))
            .spawn(move || {
                let _ = tx.send(work());
            });
        Self {
            rx: spawned.ok().map(|_| rx),
        }
    }

    /// A job that is already done (tests, answers known up front).
    pub fn ready(value: T) -> Self {
        let (tx, rx) = channel();
        let _ = tx.send(value);
        Self { rx: Some(rx) }
    }
}

impl<T> Job<T> {
    /// The result once it is there; `None` while the job runs (and after it was taken).
    pub fn poll(&mut self) -> Option<T> {
        let rx = self.rx.as_ref()?;
        match rx.try_recv() {
            Ok(v) => {
                self.rx = None;
                Some(v)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.rx = None;
                None
            }
        }
    }

    pub fn is_running(&self) -> bool {
        self.rx.is_some()
    }
}
