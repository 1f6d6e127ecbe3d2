//! The embedded demo: a generated world of fictitious people (`world.rs`, its word lists in
//! `world/lexicon.rs`), general knowledge (`facts.rs`), and the files `mdu demo-world` writes.

pub mod embedded;
pub mod facts;
pub mod tokenizer;
pub mod world;

use std::path::Path;

use crate::data::{write_jsonl, DataError, QaItem};
use world::World;

/// The four TOFU-style splits of a generated world, and a holdout split of people no model saw
/// (for membership inference: forget vs holdout; `World::holdout_items`).
pub struct Splits {
    pub forget: Vec<QaItem>,
    pub retain: Vec<QaItem>,
    pub world_facts: Vec<QaItem>,
    pub real_people: Vec<QaItem>,
    pub holdout: Vec<QaItem>,
}

impl Splits {
    pub fn generate(seed: u64) -> Self {
        let world = World::generate(seed, world::DEMO_PEOPLE);
        Self {
            forget: world.forget_items(),
            retain: world.retain_items(),
            world_facts: facts::world_facts(),
            real_people: facts::real_people(),
            holdout: world.holdout_items(),
        }
    }

    /// The retain items evaluated (TOFU evaluates a retain subset the size of the forget set):
    /// as many as the forget split, spread evenly over people, facts and templates.
    pub fn retain_eval(&self) -> Vec<QaItem> {
        let n = self.forget.len().min(self.retain.len());
        (0..n)
            .map(|i| self.retain[i * self.retain.len() / n].clone())
            .collect()
    }

    /// The utility items evaluated: the first question of every fact (the model learned both;
    /// one per fact is what TOFU's utility splits hold, and halves the evaluation time).
    pub fn utility_eval(items: &[QaItem]) -> Vec<QaItem> {
        items.iter().step_by(2).cloned().collect()
    }

    /// The splits the model was trained on (and the tokenizer; the holdout is not among them).
    pub fn named(&self) -> [(&'static str, &[QaItem]); 4] {
        [
            ("forget", &self.forget),
            ("retain", &self.retain),
            ("world_facts", &self.world_facts),
            ("real_people", &self.real_people),
        ]
    }

    /// Writes `<split>.jsonl` files into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        for (name, items) in self.named() {
            write_jsonl(&dir.join(format!("{name}.jsonl")), items)?;
        }
        write_jsonl(&dir.join("holdout.jsonl"), &self.holdout)?;
        write_jsonl(&dir.join("retain_eval.jsonl"), &self.retain_eval())?;
        write_jsonl(
            &dir.join("world_facts_eval.jsonl"),
            &Self::utility_eval(&self.world_facts),
        )?;
        write_jsonl(
            &dir.join("real_people_eval.jsonl"),
            &Self::utility_eval(&self.real_people),
        )?;
        Ok(())
    }
}
