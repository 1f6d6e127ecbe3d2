//! The setup panel's time estimate: the engine session times a short probe of the setup
//! (`unlearn::cost`); the estimate holds while the setup stays as it was asked for.

use super::app::WorkbenchApp;
use crate::eval::report::Generation;

/// Runs that would take longer than this on the paper protocol get a warning with cheaper settings.
const LONG_RUN_S: f64 = 3600.0;

/// What the setup panel shows about the run's time.
#[derive(Clone, Debug, PartialEq)]
pub enum CostLine {
    /// Nothing measured for the setup as it is: the button.
    Unknown,
    Measuring,
    Estimate {
        text: String,
        warning: Option<String>,
    },
    Failed(String),
}

impl WorkbenchApp {
    /// Asks the session to time the setup as it is.
    pub(super) fn ask_cost(&mut self) {
        if self.cost.pending.is_some() || self.run.is_some() {
            return;
        }
        let config = self.config_as_set_up();
        self.cost.pending = Some(self.session.estimate_cost(config.clone()));
        self.cost.asked_for = Some(config);
        self.cost.answer = None;
    }

    /// Collects the probe's answer; true while it runs.
    pub(super) fn poll_cost(&mut self) -> bool {
        let Some(job) = &mut self.cost.pending else {
            return false;
        };
        if let Some(answer) = job.poll() {
            self.cost.answer = Some(answer);
            self.cost.pending = None;
        }
        self.cost.pending.is_some()
    }

    pub(super) fn cost_line(&self) -> CostLine {
        if self.cost.pending.is_some() {
            return CostLine::Measuring;
        }
        let current = self.config_as_set_up();
        match (&self.cost.asked_for, &self.cost.answer) {
            (Some(asked), Some(answer)) if *asked == current => match answer {
                Ok(estimate) => CostLine::Estimate {
                    text: estimate.describe(),
                    warning: (estimate.total_s() > LONG_RUN_S
                        && current.generation == Generation::Paper)
                        .then(|| {
                            "The paper protocol takes hours on this device: Demo generation, fewer \
                             Monte-Carlo samples or a limit on the items scored (Advanced) cost less."
                                .to_string()
                        }),
                },
                Err(why) => CostLine::Failed(why.clone()),
            },
            _ => CostLine::Unknown,
        }
    }
}
