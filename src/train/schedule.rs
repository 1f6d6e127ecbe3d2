//! Linear warm-up, then a constant rate or a linear or cosine decay to a floor (nanoGPT's `get_lr`
//! is the cosine one; HF Trainer's default is the linear one).

/// What the learning rate does after warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrShape {
    #[default]
    Constant,
    Linear,
    Cosine,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrSchedule {
    pub peak: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    /// Final learning rate of a decay, as a fraction of the peak.
    pub floor_ratio: f64,
    pub shape: LrShape,
}

impl LrSchedule {
    /// Learning rate for optimiser step `step` (0-based).
    pub fn at(&self, step: usize) -> f64 {
        // 1) warm-up: linear from peak/warmup to peak
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        if self.shape == LrShape::Constant {
            return self.peak;
        }
        let floor = self.peak * self.floor_ratio;
        // 2) past the end: the floor
        if step >= self.total_steps {
            return floor;
        }
        // 3) in between: decay from peak down to the floor
        let progress = (step - self.warmup_steps) as f64
            / (self.total_steps - self.warmup_steps).max(1) as f64;
        let left = match self.shape {
            LrShape::Linear => 1.0 - progress,
            _ => 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        };
        floor + left * (self.peak - floor)
    }
}
