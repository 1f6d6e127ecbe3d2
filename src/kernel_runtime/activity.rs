//! Kernel preparation as CubeCL reports it: each JIT compilation ("[Compiling kernel] …" from the
//! compilation logger, forwarded to the `log` crate by [`super::cache`]), each autotune run
//! ("Tuning …" from cubecl-runtime's tuner) and the tuning results read back from the cache.
//!
//! Counters are process-wide; [`listen`] hands a caller the counts since it started listening,
//! at most every [`TICK`] while they change, and once more when it stops. With `MDU_KERNEL_LOG`
//! set to a file path, every such event is also appended there with the seconds since the process
//! started (where a first step's time goes).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often listeners hear about new activity.
pub const TICK: Duration = Duration::from_millis(200);

static COMPILED: AtomicU64 = AtomicU64::new(0);
static TUNED: AtomicU64 = AtomicU64::new(0);
static TUNING_CACHE_ENTRIES: AtomicU64 = AtomicU64::new(0);
static FAILED_ON_DEVICE: AtomicU64 = AtomicU64::new(0);

/// Counts of kernel preparation work (process-wide from [`snapshot`], since a start from
/// [`listen`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelActivity {
    /// Kernels JIT-compiled (NVRTC on CUDA, the driver's shader compiler on wgpu).
    pub compiled: u64,
    /// Autotune runs: an operation and shape whose candidates were compiled and timed.
    pub tuned: u64,
    /// Tuning results read from the cache on disk (a later process needs no tuning for them).
    pub tuning_cache_entries: u64,
    /// Panics on a device's server thread (a candidate or fusion path CubeCL set aside).
    pub failed_on_device: u64,
}

impl KernelActivity {
    /// The counts since `start`.
    pub fn since(self, start: KernelActivity) -> KernelActivity {
        KernelActivity {
            compiled: self.compiled.saturating_sub(start.compiled),
            tuned: self.tuned.saturating_sub(start.tuned),
            tuning_cache_entries: self
                .tuning_cache_entries
                .saturating_sub(start.tuning_cache_entries),
            failed_on_device: self.failed_on_device.saturating_sub(start.failed_on_device),
        }
    }

    /// Whether any kernel was compiled or tuned.
    pub fn is_busy(&self) -> bool {
        self.compiled > 0 || self.tuned > 0
    }
}

/// The process-wide counts so far.
pub fn snapshot() -> KernelActivity {
    KernelActivity {
        compiled: COMPILED.load(Ordering::Relaxed),
        tuned: TUNED.load(Ordering::Relaxed),
        tuning_cache_entries: TUNING_CACHE_ENTRIES.load(Ordering::Relaxed),
        failed_on_device: FAILED_ON_DEVICE.load(Ordering::Relaxed),
    }
}

pub(super) fn count_device_failure() {
    FAILED_ON_DEVICE.fetch_add(1, Ordering::Relaxed);
}

/// Reads CubeCL's log records; every other crate's records are dropped, as they were before a
/// logger was installed.
struct CubeclLog {
    file: Option<Mutex<std::fs::File>>,
    start: Instant,
}

impl log::Log for CubeclLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target().starts_with("cubecl")
    }

    fn log(&self, record: &log::Record) {
        let target = record.target();
        if !target.starts_with("cubecl") {
            return;
        }
        let message = record.args().to_string();
        let counted = if message.starts_with("[Compiling kernel]")
            || message.starts_with("[START_KERNEL_COMPILATION]")
        {
            COMPILED.fetch_add(1, Ordering::Relaxed);
            true
        } else if target.starts_with("cubecl_runtime::tune") && message.starts_with("Tuning ") {
            TUNED.fetch_add(1, Ordering::Relaxed);
            true
        } else if let Some(n) = message
            .strip_prefix("Loaded ")
            .and_then(|rest| rest.strip_suffix(" autotune cached entries"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            TUNING_CACHE_ENTRIES.fetch_add(n, Ordering::Relaxed);
            true
        } else {
            message.starts_with("Fastest result")
        };
        if let (true, Some(file)) = (counted, &self.file) {
            let first_line = message.lines().next().unwrap_or("");
            if let Ok(mut f) = file.lock() {
                let _ = writeln!(
                    f,
                    "{:10.3} {first_line}",
                    self.start.elapsed().as_secs_f64()
                );
            }
        }
    }

    fn flush(&self) {}
}

pub(super) fn install() {
    let file = std::env::var_os("MDU_KERNEL_LOG").and_then(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(Mutex::new)
    });
    let logger = CubeclLog {
        file,
        start: Instant::now(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

type Callback = Box<dyn Fn(KernelActivity) + Send + Sync>;

struct Listener {
    id: u64,
    start: KernelActivity,
    told: KernelActivity,
    callback: Callback,
}

fn listeners() -> &'static Mutex<Vec<Listener>> {
    static LISTENERS: OnceLock<Mutex<Vec<Listener>>> = OnceLock::new();
    LISTENERS.get_or_init(|| {
        // One ticker for the process: wakes every TICK and tells each listener what changed.
        std::thread::Builder::new()
            .name("mdu-kernel-activity".into())
            .spawn(|| loop {
                std::thread::sleep(TICK);
                tell_listeners();
            })
            .expect("spawn the kernel-activity ticker");
        Mutex::new(Vec::new())
    })
}

fn tell_listeners() {
    let now = snapshot();
    let mut list = listeners().lock().unwrap_or_else(|e| e.into_inner());
    for l in list.iter_mut() {
        let since = now.since(l.start);
        if since != l.told {
            l.told = since;
            (l.callback)(since);
        }
    }
}

/// While the returned guard lives, `callback` hears the activity since now whenever it changes
/// (at most every [`TICK`]), and once more when the guard is dropped if anything changed since.
/// It runs on a ticker thread: it must not block.
pub fn listen(callback: impl Fn(KernelActivity) + Send + Sync + 'static) -> Listening {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    listeners()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Listener {
            id,
            start: snapshot(),
            told: KernelActivity::default(),
            callback: Box::new(callback),
        });
    Listening { id }
}

/// Stops a [`listen`] when dropped (after a last report of anything not yet told).
pub struct Listening {
    id: u64,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut list = listeners().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = list.iter().position(|l| l.id == self.id) {
            let l = list.remove(i);
            let since = snapshot().since(l.start);
            if since != l.told {
                (l.callback)(since);
            }
        }
    }
}

/// How a kernel-preparation message begins (the window's status line shows it while a run waits).
pub const KERNELS_STATUS: &str = "Preparing GPU kernels";

/// What a person is told while kernels are prepared on `device_label` (`cuda:0`, `wgpu:…`).
pub fn describe(activity: &KernelActivity, device_label: &str) -> String {
    let mut text = format!("{}: {} compiled", KERNELS_STATUS, activity.compiled);
    if activity.tuned > 0 {
        text.push_str(&format!(", {} tuned", activity.tuned));
    }
    let kept = if super::cache::keeps_compiled_kernels(device_label) {
        "compiled kernels and tuning results"
    } else {
        "tuning results"
    };
    if activity.is_busy() {
        match super::cache::cache_dir() {
            Some(dir) => text.push_str(&format!(
                " (the first run on a device is the slow one: later runs reuse the {kept} kept in {})",
                dir.display()
            )),
            None => text.push_str(" (no cache folder: later runs prepare them again)"),
        }
    }
    text
}
