//! What a panic looks like to the user.
//!
//! CubeCL runs each device's work on a server thread (named `DSU-…` / `DSD-…` by cubecl-common)
//! and catches panics there: an autotune candidate or a fusion path that panics is dropped and
//! the next candidate is used, and a real failure (an allocation, a kernel that cannot compile)
//! comes back to the caller as an error, which Burn turns into a panic on the caller's thread.
//! Rust's default hook still printed a message and a backtrace for every such caught panic, again
//! and again while tuning.
//!
//! The policy, installed once by [`super::init`]:
//! - a panic on a device thread is one `note:` line, once per place in the code (the echo that
//!   follows a failure, a `CallError` unwrapped by CubeCL, is not repeated), and is remembered;
//! - a panic inside [`catch`] prints nothing: [`catch`] returns it as an error message with its
//!   place and the device-thread failure that caused it, and the caller ends the job with that
//!   message (an expected failure, such as the CUDA probe's "no driver here", is no bug to trace);
//! - every other panic goes to the previous hook unchanged (a bug still prints its backtrace).

use std::cell::Cell;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

thread_local! {
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic inside [`catch`] on this thread happened.
    static CAUGHT_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Device-thread panics so far, and the last one's text.
static DEVICE_PANICS: AtomicU64 = AtomicU64::new(0);
static LAST_DEVICE_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Whether `name` is a CubeCL device server thread (cubecl-common 0.10's channel runner).
fn is_device_thread(name: Option<&str>) -> bool {
    name.is_some_and(|n| n.starts_with("DSU-") || n.starts_with("DSD-"))
}

fn text_of(info: &PanicHookInfo) -> (String, String) {
    let message = panic_message(info.payload());
    let place = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_else(|| "an unknown place".into());
    (message, place)
}

pub(super) fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        if is_device_thread(thread.name()) {
            on_device_thread(info);
        } else if CATCHING.with(Cell::get) == 0 {
            previous(info);
        } else {
            let (_, place) = text_of(info);
            CAUGHT_AT.with(|at| *at.borrow_mut() = Some(place));
        }
    }));
}

fn on_device_thread(info: &PanicHookInfo) {
    static TOLD: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let (message, place) = text_of(info);
    DEVICE_PANICS.fetch_add(1, Ordering::SeqCst);
    super::activity::count_device_failure();
    let echo = message.contains("CallError");
    if !echo {
        *LAST_DEVICE_PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{message} (at {place})"));
    }
    let mut told = TOLD.lock().unwrap_or_else(|e| e.into_inner());
    if !echo && told.get_or_insert_with(HashSet::new).insert(place.clone()) {
        eprintln!(
            "note: a GPU kernel failed on the device and was set aside: {message} (at {place}); \
             where another kernel can do the work the run goes on"
        );
    }
}

/// Runs `f`; a panic in it (a backend failure, on this thread or coming back from a device
/// thread) is returned as its message instead of unwinding, and prints no backtrace.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let device_panics = DEVICE_PANICS.load(Ordering::SeqCst);
    CATCHING.with(|c| c.set(c.get() + 1));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    outcome.map_err(|payload| {
        let mut message = panic_message(&*payload);
        if let Some(place) = CAUGHT_AT.with(|at| at.borrow_mut().take()) {
            message = format!("{message} (at {place})");
        }
        let cause = (DEVICE_PANICS.load(Ordering::SeqCst) > device_panics)
            .then(|| LAST_DEVICE_PANIC.lock().ok().and_then(|l| l.clone()))
            .flatten();
        match cause {
            Some(cause) if !message.contains(&cause) => format!("{cause}; then: {message}"),
            _ => message,
        }
    })
}

/// The text of a caught panic (`&str` or `String` payloads; anything else is named as such).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
