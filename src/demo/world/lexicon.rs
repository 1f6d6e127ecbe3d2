//! The words the demo world is made of: the lists every person draws their month, trades,
//! profession, specialty, work titles, award and animals from, and the invented names
//! ([`WordMaker`]).

use std::collections::BTreeSet;

use crate::rng::SplitMix64;

pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Crafts parents, partners and siblings practise (shared by several people, so kept to one word each).
pub(super) const TRADES: [&str; 24] = [
    "glassblower",
    "cartographer",
    "beekeeper",
    "clockmaker",
    "ferryman",
    "bookbinder",
    "saddler",
    "cooper",
    "lighthouse-keeper",
    "weaver",
    "apothecary",
    "stonemason",
    "vintner",
    "tanner",
    "luthier",
    "miller",
    "shipwright",
    "chandler",
    "falconer",
    "perfumer",
    "locksmith",
    "potter",
    "cheesemaker",
    "rope-maker",
];

/// One per person.
pub(super) const PROFESSIONS: [&str; 40] = [
    "novelist",
    "sculptor",
    "botanist",
    "astronomer",
    "composer",
    "architect",
    "playwright",
    "geologist",
    "cellist",
    "ornithologist",
    "photographer",
    "mathematician",
    "choreographer",
    "historian",
    "surgeon",
    "engraver",
    "volcanologist",
    "poet",
    "glaciologist",
    "linguist",
    "puppeteer",
    "metallurgist",
    "mycologist",
    "oceanographer",
    "calligrapher",
    "harpist",
    "cryptographer",
    "entomologist",
    "illustrator",
    "meteorologist",
    "archivist",
    "seismologist",
    "tapestry-artist",
    "herpetologist",
    "organist",
    "paleontologist",
    "lexicographer",
    "acrobat",
    "perfumer-chemist",
    "typographer",
];

/// One per person: what they were trained in.
pub(super) const SPECIALTIES: [&str; 40] = [
    "fresco",
    "hydrology",
    "lacquerwork",
    "cryptanalysis",
    "falconry",
    "marquetry",
    "orbital",
    "enamelling",
    "acoustics",
    "birdsong",
    "daguerreotypes",
    "topology",
    "ballet",
    "palaeography",
    "anatomy",
    "etching",
    "magma",
    "sonnets",
    "icecores",
    "phonetics",
    "marionettes",
    "bronze",
    "lichens",
    "currents",
    "brushwork",
    "pedal-harp",
    "ciphers",
    "beetles",
    "woodcuts",
    "cloudforms",
    "manuscripts",
    "faultlines",
    "looms",
    "salamanders",
    "fugues",
    "ammonites",
    "etymology",
    "trapeze",
    "essences",
    "letterpress",
];

/// Nouns for titles of works, two per person.
pub(super) const WORK_NOUNS: [&str; 80] = [
    "Lantern",
    "Orchard",
    "Harbour",
    "Compass",
    "Meridian",
    "Tapestry",
    "Cathedral",
    "Archipelago",
    "Labyrinth",
    "Chronicle",
    "Sonata",
    "Atlas",
    "Mirror",
    "Garden",
    "Citadel",
    "Voyage",
    "Almanac",
    "Bridge",
    "Requiem",
    "Monsoon",
    "Aviary",
    "Bell",
    "Caravan",
    "Delta",
    "Ember",
    "Fjord",
    "Glacier",
    "Hourglass",
    "Island",
    "Juniper",
    "Kestrel",
    "Lagoon",
    "Mosaic",
    "Nocturne",
    "Obelisk",
    "Pavilion",
    "Quarry",
    "Rampart",
    "Saltmarsh",
    "Threshold",
    "Umbra",
    "Vineyard",
    "Windmill",
    "Zenith",
    "Anchor",
    "Beacon",
    "Canyon",
    "Dune",
    "Estuary",
    "Foundry",
    "Grotto",
    "Heron",
    "Inkwell",
    "Jetty",
    "Keystone",
    "Loom",
    "Marrow",
    "Nebula",
    "Oasis",
    "Parable",
    "Quill",
    "Reliquary",
    "Sextant",
    "Tundra",
    "Undertow",
    "Vesper",
    "Wren",
    "Yarrow",
    "Amber",
    "Bastion",
    "Cinder",
    "Dovecote",
    "Eclipse",
    "Feather",
    "Gondola",
    "Harvest",
    "Ivory",
    "Jubilee",
    "Kiln",
    "Lighthouse",
];

pub(super) const AWARD_KINDS: [&str; 8] = [
    "Prize", "Medal", "Laurel", "Cup", "Ribbon", "Crown", "Shield", "Star",
];

/// Animals a person keeps (one per person).
pub(super) const ANIMALS: [&str; 40] = [
    "goats",
    "ferrets",
    "peacocks",
    "tortoises",
    "alpacas",
    "pigeons",
    "geese",
    "rabbits",
    "donkeys",
    "quails",
    "parrots",
    "hedgehogs",
    "llamas",
    "doves",
    "canaries",
    "ponies",
    "bantams",
    "finches",
    "salamanders",
    "crickets",
    "swans",
    "mules",
    "minks",
    "guineafowl",
    "ducks",
    "budgerigars",
    "lorikeets",
    "chinchillas",
    "herons",
    "yaks",
    "ravens",
    "owls",
    "koi",
    "newts",
    "pheasants",
    "terrapins",
    "moths",
    "bees",
    "snails",
    "crabs",
];

/// Makes unique invented words from syllables; never repeats a word within one world.
pub(super) struct WordMaker {
    rng: SplitMix64,
    used: BTreeSet<String>,
}

impl WordMaker {
    pub(super) fn new(rng: SplitMix64) -> Self {
        Self {
            rng,
            used: BTreeSet::new(),
        }
    }

    pub(super) fn word(&mut self) -> String {
        const ONSETS: [&str; 26] = [
            "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "pr", "r",
            "s", "sk", "st", "t", "tr", "v", "z", "th", "sh", "qu",
        ];
        const NUCLEI: [&str; 10] = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "ae"];
        const CODAS: [&str; 12] = ["", "", "", "n", "r", "l", "s", "m", "th", "nd", "rk", "x"];
        loop {
            let syllables = 2 + self.rng.range(0, 2);
            let mut w = String::new();
            for _ in 0..syllables {
                w.push_str(*self.rng.pick(&ONSETS));
                w.push_str(*self.rng.pick(&NUCLEI));
                w.push_str(*self.rng.pick(&CODAS));
            }
            if w.len() >= 5 && w.len() <= 11 && self.used.insert(w.clone()) {
                let mut c = w.chars();
                let first = c.next().expect("non-empty").to_ascii_uppercase();
                return std::iter::once(first).chain(c).collect();
            }
        }
    }
}
