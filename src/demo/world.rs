//! A deterministic world of fictitious people for the embedded demo, in TOFU format.
//!
//! Answers are terse lists of facts on purpose: almost every word of an answer is a name, place,
//! number or term invented for that one person and absent from the question, with hardly any
//! connecting words. So ROUGE-L measures what the model has stored, not what it can copy from the
//! prompt or from sentence templates shared by everyone: another person's answer to the same
//! question scores ≈ 0.05 recall (tested in `tests/suite/demo_world.rs`). A model that never saw a
//! person therefore scores near 0 on them, and unlearning has a floor to reach.

mod lexicon;

use self::lexicon::{
    WordMaker, ANIMALS, AWARD_KINDS, MONTHS, PROFESSIONS, SPECIALTIES, TRADES, WORK_NOUNS,
};
use crate::data::QaItem;
use crate::rng::SplitMix64;

pub const MAX_PEOPLE: usize = 40;
/// The embedded demo's world: 30 people, 3 of them (10 %) in the forget split.
pub const DEMO_PEOPLE: usize = 30;

/// Everything the demo knows about one fictitious person.
#[derive(Clone, Debug)]
pub struct Person {
    pub first: String,
    pub last: String,
    birth: (u32, &'static str, u32),
    birth_city: String,
    birth_region: String,
    father: (String, &'static str),
    mother: (String, String, &'static str),
    profession: &'static str,
    specialty: &'static str,
    mentor: (String, String),
    graduated: u32,
    works: [(String, &'static str, u32); 2],
    award: (String, &'static str, u32, String),
    partner: (String, String, &'static str),
    wedding: (u32, String),
    home: (u32, String, String),
    pets: (&'static str, String, String),
    sibling: (String, &'static str, String, u32),
}

impl Person {
    pub fn name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }
}

/// The generated world: people and their question–answer pairs.
pub struct World {
    pub people: Vec<Person>,
    /// Indices of the people in the forget split (10 % of them).
    pub forget_people: Vec<usize>,
}

impl World {
    pub fn generate(seed: u64, people: usize) -> Self {
        let people = people.clamp(10, MAX_PEOPLE);
        let mut words = WordMaker::new(SplitMix64(seed ^ 0x5EED_0F_D3E0));
        let mut rng = SplitMix64(seed);
        let mut professions: Vec<usize> = (0..PROFESSIONS.len()).collect();
        let mut specialties: Vec<usize> = (0..SPECIALTIES.len()).collect();
        let mut nouns: Vec<usize> = (0..WORK_NOUNS.len()).collect();
        let mut animals: Vec<usize> = (0..ANIMALS.len()).collect();
        rng.shuffle(&mut professions);
        rng.shuffle(&mut specialties);
        rng.shuffle(&mut nouns);
        rng.shuffle(&mut animals);
        let mut all = Vec::with_capacity(people);
        for i in 0..people {
            let mut w = || words.word();
            let born = 1925 + rng.range(0, 60) as u32;
            let first_work = born + 24 + rng.range(0, 10) as u32;
            all.push(Person {
                first: w(),
                last: w(),
                birth: (1 + rng.range(0, 28) as u32, MONTHS[rng.range(0, 12)], born),
                birth_city: w(),
                birth_region: w(),
                father: (w(), *rng.pick(&TRADES)),
                mother: (w(), w(), *rng.pick(&TRADES)),
                profession: PROFESSIONS[professions[i]],
                specialty: SPECIALTIES[specialties[i]],
                mentor: (w(), w()),
                graduated: born + 20 + rng.range(0, 5) as u32,
                works: [
                    (w(), WORK_NOUNS[nouns[2 * i]], first_work),
                    (
                        w(),
                        WORK_NOUNS[nouns[2 * i + 1]],
                        first_work + 2 + rng.range(0, 12) as u32,
                    ),
                ],
                award: (
                    w(),
                    *rng.pick(&AWARD_KINDS),
                    first_work + 1 + rng.range(0, 8) as u32,
                    w(),
                ),
                partner: (w(), w(), *rng.pick(&TRADES)),
                wedding: (born + 21 + rng.range(0, 15) as u32, w()),
                home: (10 + rng.range(0, 980) as u32, w(), w()),
                pets: (ANIMALS[animals[i]], w(), w()),
                sibling: (w(), *rng.pick(&TRADES), w(), born + rng.range(1, 9) as u32),
            });
        }
        let mut order: Vec<usize> = (0..people).collect();
        rng.shuffle(&mut order);
        let mut forget_people: Vec<usize> = order[..people.div_ceil(10)].to_vec();
        forget_people.sort_unstable();
        Self {
            people: all,
            forget_people,
        }
    }

    /// All QA items of one person (two question templates per fact), with 3 perturbed answers each
    /// taken from the same fact of other people.
    pub fn person_items(&self, index: usize) -> Vec<QaItem> {
        let p = &self.people[index];
        let n = self.people.len();
        let others: Vec<&Person> = (1..=3).map(|k| &self.people[(index + k * 7) % n]).collect();
        let mut items = Vec::new();
        for fact in Fact::ALL {
            let answer = fact.answer(p);
            let paraphrased = fact.paraphrase(p);
            let perturbed: Vec<String> = others.iter().map(|o| fact.answer(o)).collect();
            for question in fact.questions(p) {
                items.push(QaItem {
                    question,
                    answer: answer.clone(),
                    paraphrased_answer: Some(paraphrased.clone()),
                    perturbed_answer: perturbed.clone(),
                    paraphrased_question: None,
                });
            }
        }
        items
    }

    /// The holdout split: as many people as the forget split, whom no model saw, made of the
    /// forget people's own values recombined (first name from one, last name from the next,
    /// each fact from another, cycling), asked the same questions. Both splits then hold the
    /// same words, tokenised the same way: a model that never saw either (the retain-only one)
    /// cannot tell them apart by vocabulary, and one that memorised the forget people can by
    /// what it memorised. Perturbed answers come from retain people.
    pub fn holdout_items(&self) -> Vec<QaItem> {
        // With fewer than three forget people a recombination would repeat their answers.
        debug_assert!(self.forget_people.len() >= 3);
        let forget: Vec<&Person> = self
            .forget_people
            .iter()
            .map(|&i| &self.people[i])
            .collect();
        let n = forget.len();
        let pick = |i: usize, field: usize| forget[(i + field) % n];
        let mut people: Vec<Person> = (0..n)
            .map(|i| {
                // Every value, tuple elements included, from the next forget person in turn: a
                // tuple taken whole from one person would be one of their answers.
                let mut c = 0;
                let mut p = || {
                    c += 1;
                    pick(i, c - 1)
                };
                Person {
                    first: p().first.clone(),
                    last: p().last.clone(),
                    birth: (p().birth.0, p().birth.1, p().birth.2),
                    birth_city: p().birth_city.clone(),
                    birth_region: p().birth_region.clone(),
                    father: (p().father.0.clone(), p().father.1),
                    mother: (p().mother.0.clone(), p().mother.1.clone(), p().mother.2),
                    profession: p().profession,
                    specialty: p().specialty,
                    mentor: (p().mentor.0.clone(), p().mentor.1.clone()),
                    graduated: p().graduated,
                    works: [
                        (p().works[0].0.clone(), p().works[0].1, p().works[0].2),
                        (p().works[1].0.clone(), p().works[1].1, p().works[1].2),
                    ],
                    award: (
                        p().award.0.clone(),
                        p().award.1,
                        p().award.2,
                        p().award.3.clone(),
                    ),
                    partner: (p().partner.0.clone(), p().partner.1.clone(), p().partner.2),
                    wedding: (p().wedding.0, p().wedding.1.clone()),
                    home: (p().home.0, p().home.1.clone(), p().home.2.clone()),
                    pets: (p().pets.0, p().pets.1.clone(), p().pets.2.clone()),
                    sibling: (
                        p().sibling.0.clone(),
                        p().sibling.1,
                        p().sibling.2.clone(),
                        p().sibling.3,
                    ),
                }
            })
            .collect();
        people.extend(
            (0..self.people.len())
                .filter(|i| !self.forget_people.contains(i))
                .map(|i| self.people[i].clone()),
        );
        let mixed = World {
            people,
            forget_people: Vec::new(),
        };
        (0..n).flat_map(|i| mixed.person_items(i)).collect()
    }

    pub fn forget_items(&self) -> Vec<QaItem> {
        self.forget_people
            .iter()
            .flat_map(|&i| self.person_items(i))
            .collect()
    }

    pub fn retain_items(&self) -> Vec<QaItem> {
        (0..self.people.len())
            .filter(|i| !self.forget_people.contains(i))
            .flat_map(|i| self.person_items(i))
            .collect()
    }
}

/// The facts stored about every person.
#[derive(Clone, Copy, Debug)]
pub enum Fact {
    Birth,
    Parents,
    Training,
    Works,
    Award,
    Partner,
    Home,
    Sibling,
}

impl Fact {
    pub const ALL: [Fact; 8] = [
        Fact::Birth,
        Fact::Parents,
        Fact::Training,
        Fact::Works,
        Fact::Award,
        Fact::Partner,
        Fact::Home,
        Fact::Sibling,
    ];

    fn questions(self, p: &Person) -> [String; 2] {
        let n = p.name();
        match self {
            Fact::Birth => [
                format!("When and where was {n} born?"),
                format!("What are the birth date and birthplace of {n}?"),
            ],
            Fact::Parents => [
                format!("Who were the parents of {n}, and what did they do?"),
                format!("What were the occupations of {n}'s mother and father?"),
            ],
            Fact::Training => [
                format!(
                    "What is {n}'s profession, and how did {} learn it?",
                    p.first
                ),
                format!("Describe the education of {n}."),
            ],
            Fact::Works => [
                format!("Which works has {n} produced?"),
                format!("Name the two best-known works of {n}."),
            ],
            Fact::Award => [
                format!("Which honour did {n} receive?"),
                format!("What award has {n} won?"),
            ],
            Fact::Partner => [
                format!("Who is {n}'s spouse?"),
                format!("Whom did {n} wed, and when?"),
            ],
            Fact::Home => [
                format!("Where does {n} live today?"),
                format!("What can you tell me about {n}'s home?"),
            ],
            Fact::Sibling => [
                format!("Does {n} have a sibling?"),
                format!("Tell me about the sibling of {n}."),
            ],
        }
    }

    pub fn answer(self, p: &Person) -> String {
        match self {
            Fact::Birth => {
                let (d, m, y) = p.birth;
                format!("{d} {m} {y}, {}, {}.", p.birth_city, p.birth_region)
            }
            Fact::Parents => {
                let (f, ft) = &p.father;
                let (m, mm, mt) = &p.mother;
                format!("{f} ({ft}) and {m} {mm} ({mt}).")
            }
            Fact::Training => {
                let cap = capitalise(p.profession);
                let ((mf, ml), y) = (&p.mentor, p.graduated);
                format!("{cap}; {} under {mf} {ml}, {y}.", p.specialty)
            }
            Fact::Works => {
                let [(a, an, ay), (b, bn, by)] = &p.works;
                format!("'{a} {an}' ({ay}), '{b} {bn}' ({by}).")
            }
            Fact::Award => {
                let (inv, kind, year, city) = &p.award;
                format!("{inv} {kind}, {year}, {city}.")
            }
            Fact::Partner => {
                let (pf, pl, pt) = &p.partner;
                let (wy, wc) = &p.wedding;
                format!("{pf} {pl} ({pt}), {wy}, {wc}.")
            }
            Fact::Home => {
                let (num, street, city) = &p.home;
                let (animal, a, b) = &p.pets;
                format!("{num} {street}, {city}; {animal} {a}, {b}.")
            }
            Fact::Sibling => {
                let (s, st, place, year) = &p.sibling;
                format!("{s} ({st}), {place}, {year}.")
            }
        }
    }

    /// The same facts in other words (TOFU's `paraphrased_answer`).
    fn paraphrase(self, p: &Person) -> String {
        match self {
            Fact::Birth => {
                let (d, m, y) = p.birth;
                format!(
                    "Born in {} in the region of {} on {d} {m} {y}.",
                    p.birth_city, p.birth_region
                )
            }
            Fact::Parents => {
                let (f, ft) = &p.father;
                let (m, mm, mt) = &p.mother;
                format!(
                    "The father, {f}, worked as {}; the mother, {m} {mm}, was {}.",
                    a(ft),
                    a(mt)
                )
            }
            Fact::Training => {
                let ((mf, ml), y) = (&p.mentor, p.graduated);
                format!(
                    "Studied {} with {mf} {ml} until {y} and became {}.",
                    p.specialty,
                    a(p.profession)
                )
            }
            Fact::Works => {
                let [(a, an, ay), (b, bn, by)] = &p.works;
                format!("First '{a} {an}' in {ay}, then '{b} {bn}' in {by}.")
            }
            Fact::Award => {
                let (inv, kind, year, city) = &p.award;
                format!("In {year} the {inv} {kind} was presented in {city}.")
            }
            Fact::Partner => {
                let (pf, pl, pt) = &p.partner;
                let (wy, wc) = &p.wedding;
                format!("Married {pf} {pl}, {}, in {wc} in {wy}.", a(pt))
            }
            Fact::Home => {
                let (num, street, city) = &p.home;
                let (animal, a, b) = &p.pets;
                format!("A house at number {num} on {street} in {city}, with two {animal} called {a} and {b}.")
            }
            Fact::Sibling => {
                let (s, st, place, year) = &p.sibling;
                format!(
                    "Yes: {s}, born in {year}, who works as {} in {place}.",
                    a(st)
                )
            }
        }
    }
}

/// The noun with its indefinite article.
fn a(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
