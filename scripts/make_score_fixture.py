"""Golden values for `mdu score`: pairs and rouge-score 0.1.2 ROUGE-L (use_stemmer=True) scores.

    /opt/venv/bin/pip install rouge-score==0.1.2     # nltk 3.x comes with it
    /opt/venv/bin/python scripts/make_score_fixture.py

Writes tests/fixtures/reference/score_pairs.jsonl (the input, one {"reference","candidate"} per
line) and tests/fixtures/reference/score_expected.jsonl (one {"precision","recall","fmeasure"}
per line, from RougeScorer(["rougeL"], use_stemmer=True).score(reference, candidate)).
Deterministic (seeded); json.dumps writes floats with repr, the shortest round trip.
"""

import json
import os
import random

from rouge_score import rouge_scorer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "tests", "fixtures", "reference")

# metrics.md §1.2 golden vectors, then edge cases: empty strings, Unicode case mapping,
# non-ASCII letters as separators, digits, control whitespace, JSON escapes, stemming traps
# (NLTK_EXTENSIONS Porter: irregular forms, 'ies'/'ied', y->i, alli/bli/fulli/logi).
FIXED = [
    ("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log."),
    ("He is a general", "He is generous"),
    ("Hsiao Yun-Hwa's father was a civil engineer.",
     "Hsiao Yun-Hwa's father worked as a civil engineer in Taipei."),
    ("İstanbul café", "istanbul caf"),
    ("", "abc"),
    ("abc", ""),
    ("", ""),
    ("   ", "\t\n"),
    ("KELVIN \u212a degrees", "kelvin k degrees"),
    ("Straße naïve façade", "strasse naive facade"),
    ("東京 is the capital", "Tokyo is the capital"),
    ("He was born in 1934, in the 2000s", "born 1934 2000s"),
    ("line one\nline two\r\nline three", "line two line three"),
    ("quotes \"inside\" and \\ backslash", "quotes inside backslash"),
    ("emoji \U0001F600 between words", "emoji between words"),
    ("skies dying lying tying news innings outings cannings",
     "sky die lie tie new inning outing canning"),
    ("dies cried generally formative greatly community", "die cri gener form great commun"),
    ("happily beautifully logically hopefully", "happy beautiful logic hopeful"),
    ("proceed exceed succeed", "proce exce succe"),
    ("A formative year", "A form year"),
    ("enjoy using the fly", "enjoyed uses flies"),
    ("The the the the", "the"),
    ("a", "a"),
    ("1 2 3 4 5", "5 4 3 2 1"),
]

WORDS = ("the author was born in a small town and wrote many novels about war love history "
         "family science fiction awards received early life career father mother worked as "
         "engineer doctor teacher painter famous books published between years genre themes "
         "relationships running studies studied happiness generously organizational").split()


def perturb(rng, words):
    w = list(words)
    op = rng.randrange(6)
    if op == 0 and len(w) > 1:
        rng.shuffle(w)
    elif op == 1:
        w = [x for x in w if rng.random() > 0.3]
    elif op == 2:
        w = w + rng.sample(WORDS, 3)
    elif op == 3:
        w = [x.upper() if rng.random() < 0.3 else x for x in w]
    elif op == 4:
        w = [x + rng.choice([",", ".", "'s", "-", ""]) for x in w]
    else:
        w = w[: max(1, len(w) // 2)]
    return " ".join(w)


def pairs():
    rng = random.Random(1234)
    out = list(FIXED)
    for _ in range(300):
        ref = [rng.choice(WORDS) for _ in range(rng.randint(1, 30))]
        out.append((" ".join(ref), perturb(rng, ref)))
    return out


def main():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    ps = pairs()
    os.makedirs(REF, exist_ok=True)
    with open(os.path.join(REF, "score_pairs.jsonl"), "w", encoding="utf-8") as f:
        for ref, cand in ps:
            f.write(json.dumps({"reference": ref, "candidate": cand}) + "\n")
    with open(os.path.join(REF, "score_expected.jsonl"), "w", encoding="utf-8") as f:
        for ref, cand in ps:
            s = scorer.score(ref, cand)["rougeL"]
            # rouge-score returns int 0 for an empty side; write floats throughout.
            f.write(json.dumps({"precision": float(s.precision), "recall": float(s.recall),
                                "fmeasure": float(s.fmeasure)}) + "\n")
    print(f"wrote {len(ps)} pairs to {REF}/score_pairs.jsonl and score_expected.jsonl")


if __name__ == "__main__":
    main()
