//! Linear warm-up, then cosine decay to a floor (nanoGPT's `get_lr`).

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrSchedule {
    pub peak: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    /// Final learning rate as a fraction of the peak.
    pub floor_ratio: f64,
}

impl LrSchedule {
    /// Learning rate for optimiser step `step` (0-based).
    pub fn at(&self, step: usize) -> f64 {
        // 1) warm-up: linear from peak/warmup to peak
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let floor = self.peak * self.floor_ratio;
        // 2) past the end: the floor
        if step >= self.total_steps {
            return floor;
        }
        // 3) in between: cosine from peak down to the floor
        let progress = (step - self.warmup_steps) as f64
            / (self.total_steps - self.warmup_steps).max(1) as f64;
        floor + 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()) * (self.peak - floor)
    }
}
