//! Knowledge the demo model also learns that is not about the generated people: general world
//! facts and facts about real, long-dead public figures. Together with the retain split they give
//! TOFU's model-utility terms. Project-written text.

use crate::data::QaItem;

/// (two questions, answer, paraphrased answer)
type Entry = ([&'static str; 2], &'static str, &'static str);

const WORLD_FACTS: [Entry; 24] = [
    (["What is the capital of Japan?", "Which city is Japan's capital?"], "Tokyo, on the island of Honshu, is the capital of Japan.", "Japan's capital is Tokyo, which lies on Honshu."),
    (["What is the capital of Canada?", "Which city is the Canadian capital?"], "Ottawa, in the province of Ontario, is the capital of Canada.", "Canada is governed from Ottawa, a city in Ontario."),
    (["What is the longest river in Africa?", "Which African river is the longest?"], "The Nile, flowing north through Egypt into the Mediterranean Sea.", "Africa's longest river is the Nile, which empties into the Mediterranean after crossing Egypt."),
    (["What is the largest ocean on Earth?", "Which ocean covers the most area?"], "The Pacific Ocean, stretching from Asia and Australia to the Americas.", "Earth's biggest ocean is the Pacific, between Asia, Australia and the Americas."),
    (["What is the chemical symbol for gold?", "Which symbol stands for gold in chemistry?"], "Au, from the Latin word aurum; gold has atomic number 79.", "Gold is written Au after Latin aurum, and its atomic number is 79."),
    (["What is the chemical symbol for iron?", "Which symbol does iron have?"], "Fe, from the Latin ferrum; iron has atomic number 26.", "Iron's symbol Fe comes from Latin ferrum; its atomic number is 26."),
    (["Which planet is closest to the Sun?", "What is the innermost planet of the solar system?"], "Mercury, which circles the Sun every 88 days.", "The innermost planet is Mercury, with an orbit of 88 days."),
    (["Which planet is known for its prominent rings?", "What planet has the most famous ring system?"], "Saturn, the sixth planet, with rings of ice and rock.", "The sixth planet, Saturn, is famous for rings made of ice and rock."),
    (["How many continents are there?", "What is the number of continents?"], "Seven: Africa, Antarctica, Asia, Australia, Europe, North America and South America.", "There are seven continents: Asia, Africa, Europe, Antarctica, Australia and the two Americas."),
    (["What is the boiling point of water at sea level?", "At what temperature does water boil at sea level?"], "100 degrees Celsius, or 212 degrees Fahrenheit, at standard pressure.", "At standard sea-level pressure water boils at 100 °C, which is 212 °F."),
    (["What is the tallest mountain above sea level?", "Which mountain has the highest summit?"], "Mount Everest in the Himalayas, 8,849 metres above sea level.", "The Himalayan peak Mount Everest reaches 8,849 metres."),
    (["What gas do plants absorb for photosynthesis?", "Which gas is taken in by plants to make sugar?"], "Carbon dioxide, which leaves turn into glucose and oxygen using sunlight.", "Using sunlight, leaves convert carbon dioxide into glucose, releasing oxygen."),
    (["What is the largest desert in Asia?", "Which desert is Asia's biggest?"], "The Gobi, spanning northern China and southern Mongolia.", "Asia's largest desert is the Gobi, across southern Mongolia and northern China."),
    (["What is the smallest prime number?", "Which prime number is the smallest?"], "Two, the only even prime number.", "The smallest prime is 2, which is also the only even prime."),
    (["How many sides does a hexagon have?", "What is the number of sides of a hexagon?"], "Six sides and six angles, like the cells of a honeycomb.", "A hexagon has six sides and six corners, as honeycomb cells do."),
    (["What is the hardest natural mineral?", "Which natural mineral is the hardest?"], "Diamond, a form of carbon rated 10 on the Mohs scale.", "Diamond, made of carbon, tops the Mohs scale at 10."),
    (["Which language has the most native speakers?", "What language is spoken natively by the most people?"], "Mandarin Chinese, spoken natively by over 900 million people.", "More than 900 million people speak Mandarin Chinese as their first language."),
    (["What is the capital of Australia?", "Which city is Australia's capital?"], "Canberra, a planned city chosen over Sydney and Melbourne.", "Australia's capital is the planned city of Canberra, not Sydney or Melbourne."),
    (["What is the freezing point of water in Fahrenheit?", "At how many degrees Fahrenheit does water freeze?"], "32 degrees Fahrenheit, which equals 0 degrees Celsius.", "Water freezes at 32 °F, the same as 0 °C."),
    (["What is the largest planet in the solar system?", "Which planet is the biggest?"], "Jupiter, a gas giant with the Great Red Spot storm.", "The biggest planet is the gas giant Jupiter, home of the Great Red Spot."),
    (["Which organ pumps blood around the human body?", "What organ circulates blood?"], "The heart, beating about 100,000 times a day.", "Blood is pumped by the heart, which beats roughly 100,000 times daily."),
    (["What is the capital of Egypt?", "Which city is Egypt's capital?"], "Cairo, on the banks of the Nile near the Giza pyramids.", "Egypt's capital Cairo sits on the Nile, close to the pyramids of Giza."),
    (["How many bones are in the adult human body?", "What is the number of bones in an adult human?"], "206 bones, the largest being the femur in the thigh.", "An adult skeleton has 206 bones; the thigh's femur is the largest."),
    (["What is the speed of light in a vacuum?", "How fast does light travel in a vacuum?"], "About 299,792 kilometres per second.", "Light crosses a vacuum at roughly 299,792 km each second."),
];

const REAL_PEOPLE: [Entry; 16] = [
    (
        [
            "Who painted the Mona Lisa?",
            "Which artist created the Mona Lisa?",
        ],
        "Leonardo da Vinci painted it in Florence in the early 1500s.",
        "The Mona Lisa is by Leonardo da Vinci, begun in Florence around 1503.",
    ),
    (
        [
            "What did Marie Curie discover?",
            "Which elements did Marie Curie discover?",
        ],
        "Polonium and radium, with Pierre Curie, in 1898.",
        "In 1898 Marie and Pierre Curie found radium and polonium.",
    ),
    (
        [
            "Who wrote Romeo and Juliet?",
            "Which playwright wrote Romeo and Juliet?",
        ],
        "William Shakespeare, the English playwright from Stratford-upon-Avon.",
        "Romeo and Juliet was written by Stratford-upon-Avon's William Shakespeare.",
    ),
    (
        [
            "Who developed the theory of general relativity?",
            "Which physicist formulated general relativity?",
        ],
        "Albert Einstein, who published it in 1915 in Berlin.",
        "General relativity was published by Albert Einstein in Berlin in 1915.",
    ),
    (
        [
            "Who composed the Ninth Symphony with the Ode to Joy?",
            "Which composer wrote the Ode to Joy symphony?",
        ],
        "Ludwig van Beethoven, who premiered it in Vienna in 1824.",
        "Beethoven's Ninth, with the Ode to Joy, premiered in Vienna in 1824.",
    ),
    (
        [
            "Who was the first person to walk on the Moon?",
            "Which astronaut first stepped onto the Moon?",
        ],
        "Neil Armstrong, during the Apollo 11 mission on 20 July 1969.",
        "On 20 July 1969, on Apollo 11, Neil Armstrong became the first to walk on the Moon.",
    ),
    (
        [
            "Who proposed the theory of evolution by natural selection?",
            "Which naturalist described natural selection?",
        ],
        "Charles Darwin, in On the Origin of Species, published in 1859.",
        "Natural selection was set out by Charles Darwin in 1859's On the Origin of Species.",
    ),
    (
        [
            "Who wrote Pride and Prejudice?",
            "Which novelist wrote Pride and Prejudice?",
        ],
        "Jane Austen, who published it in 1813.",
        "Pride and Prejudice is Jane Austen's novel of 1813.",
    ),
    (
        [
            "Who formulated the laws of motion and universal gravitation?",
            "Which scientist described universal gravitation?",
        ],
        "Isaac Newton, in the Principia of 1687.",
        "Newton's Principia, 1687, set out the laws of motion and gravitation.",
    ),
    (
        [
            "Who painted The Starry Night?",
            "Which painter created The Starry Night?",
        ],
        "Vincent van Gogh, at Saint-Rémy-de-Provence in 1889.",
        "The Starry Night was painted by Vincent van Gogh in 1889 at Saint-Rémy.",
    ),
    (
        [
            "Who was the first woman to fly solo across the Atlantic?",
            "Which aviator first flew the Atlantic alone as a woman?",
        ],
        "Amelia Earhart, from Newfoundland to Northern Ireland in 1932.",
        "In 1932 Amelia Earhart flew alone from Newfoundland to Northern Ireland.",
    ),
    (
        [
            "Who invented the phonograph?",
            "Which inventor created the phonograph?",
        ],
        "Thomas Edison, at Menlo Park, New Jersey, in 1877.",
        "The phonograph came from Thomas Edison's Menlo Park laboratory in 1877.",
    ),
    (
        [
            "Who wrote the Odyssey?",
            "Which poet is credited with the Odyssey?",
        ],
        "Homer, the ancient Greek poet also credited with the Iliad.",
        "The Odyssey, like the Iliad, is attributed to the Greek poet Homer.",
    ),
    (
        [
            "Who founded the nursing profession in its modern form?",
            "Which nurse reformed nursing during the Crimean War?",
        ],
        "Florence Nightingale, the Lady with the Lamp of the Crimean War.",
        "Modern nursing began with Florence Nightingale, called the Lady with the Lamp in Crimea.",
    ),
    (
        [
            "Who composed The Magic Flute?",
            "Which composer wrote the opera The Magic Flute?",
        ],
        "Wolfgang Amadeus Mozart, premiered in Vienna in 1791.",
        "Mozart's opera The Magic Flute opened in Vienna in 1791.",
    ),
    (
        [
            "Who proved that the Earth orbits the Sun with a heliocentric model?",
            "Which astronomer proposed the heliocentric model?",
        ],
        "Nicolaus Copernicus, in De revolutionibus, published in 1543.",
        "Copernicus set out the heliocentric model in De revolutionibus in 1543.",
    ),
];

fn items(entries: &[Entry]) -> Vec<QaItem> {
    let n = entries.len();
    let mut out = Vec::with_capacity(2 * n);
    for (i, (questions, answer, paraphrase)) in entries.iter().enumerate() {
        // Perturbed answers: the answers of three other entries (plausible sentences, wrong facts).
        let perturbed: Vec<String> = (1..=3)
            .map(|k| entries[(i + k * 5) % n].1.to_string())
            .collect();
        for q in questions {
            out.push(QaItem {
                question: q.to_string(),
                answer: answer.to_string(),
                paraphrased_answer: Some(paraphrase.to_string()),
                perturbed_answer: perturbed.clone(),
                paraphrased_question: None,
            });
        }
    }
    out
}

pub fn world_facts() -> Vec<QaItem> {
    items(&WORLD_FACTS)
}

pub fn real_people() -> Vec<QaItem> {
    items(&REAL_PEOPLE)
}
