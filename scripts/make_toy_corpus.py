"""Generate the toy English→German parallel corpus in ``data/toy/``.

The corpus is produced by a small rule-based grammar so that every English sentence has exactly one
German translation. It is small enough to train on a laptop CPU in minutes, yet it contains the word-order
phenomena that make attention necessary: the German verb does not stay where the English verb is.

Phenomena (each forces attention away from the diagonal):
  * verb-final subordinate clauses: "because the man reads the book" → "weil der Mann das Buch liest";
  * verb-second inversion after a fronted adverb or subordinate clause: "today he sleeps" → "heute schläft er";
  * separable verbs, whose prefix moves to the clause end: "he calls the woman" → "er ruft die Frau an";
  * perfect tense and modals, whose participle/infinitive moves to the clause end;
  * negation, whose "nicht" follows the object: "does not read the book" → "liest das Buch nicht";
  * article/adjective/relative-pronoun agreement in gender, number and case (der/den/dem, großer/großen).

Regenerating with the same seed gives identical bytes; valid and test sources never occur in train.

The grammar knows which English word produced which German word, so it also writes gold word alignments of valid
and test (``valid.align``, ``test.align``: Pharaoh ``i-j``, English word i to German word j, words as whitespace
separates them): each word carries the lexical items it expresses (:class:`Word`), and two words align when they
share one. A separable verb's two parts both align to the English verb, a contraction ("im") to the preposition
and the article, "not" to "nicht"; English do-support ("does") aligns to nothing.

Usage: python scripts/make_toy_corpus.py [--out data/toy] [--seed 1234]
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the lexicon beside this script, however it is loaded
from toy_lexicon import (  # noqa: E402
    ADJECTIVES,
    ADVERBS,
    CONJUNCTIONS,
    DEFINITE,
    EIN_WORD_ENDING,
    INTRANSITIVE,
    MIXED_ADJ,
    MODALS,
    NOUNS,
    NUMBERS,
    POSSESSIVES,
    PREPOSITIONS,
    PRONOUNS,
    SAYING_VERBS,
    STRONG_PLURAL_ADJ,
    TRANSITIVE,
    WEAK_ADJ,
    Verb,
)

# ---------------------------------------------------------------------------------------------------------
# Words that know what they translate
# ---------------------------------------------------------------------------------------------------------

_ITEMS = itertools.count()  # ids of lexical items; drawn without the random generator, so the text is unchanged


class Word(str):
    """A word, and the ids of the lexical items it expresses: an English and a German word align when they share
    one. Everywhere else a plain string, so the grammar's tests, joins and comparisons read as before."""

    items: frozenset[int] = frozenset()


def word(text: str, *items: int) -> Word:
    made = Word(text)
    made.items = frozenset(items)
    return made


def unit(en: str, de: str) -> tuple[list[Word], list[Word]]:
    """The words of one lexical item in both languages (either may be several words), all aligned to each other."""
    item = next(_ITEMS)
    return [word(w, item) for w in en.split()], [word(w, item) for w in de.split()]


COMMA = word(",")


def gold_links(en: list[Word], de: list[Word]) -> str:
    """Pharaoh links between the whitespace words of the finished sentences (a comma joins the word before it)."""
    def numbered(words: list[Word]) -> list[tuple[int, Word]]:
        position, out = -1, []
        for w in words:
            if w != ",":
                position += 1
                out.append((position, w))
        return out

    return " ".join(f"{i}-{j}" for i, e in numbered(en) for j, d in numbered(de) if e.items & d.items)


# ---------------------------------------------------------------------------------------------------------
# Grammar
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Phrase:
    """A phrase in both languages, plus German agreement features."""

    en: list[Word]
    de: list[Word]
    person: str = "3sg"  # "1sg", "3sg" or "pl": selects the verb form
    key: str = "m"  # gender, or "pl": selects relative pronouns


class Grammar:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # -- noun phrases ------------------------------------------------------------------------------------
    def noun_phrase(self, case: str, *, definite_only: bool = False, allow_relative: bool = False) -> Phrase:
        rng = self.rng
        noun = rng.choice(NOUNS)
        plural = self.chance(0.3)
        kind = "the" if definite_only else rng.choices(["the", "a", "poss", "num"], weights=[5, 3, 2, 1])[0]
        if kind == "a" and plural:
            kind = "the"
        if kind == "num" and not plural:
            kind = "the"
        key = "pl" if plural else noun.gender
        adjectives = rng.sample(ADJECTIVES, rng.choices([0, 1, 2], weights=[6, 3, 1])[0])
        if kind == "the":
            (en_det, de_det), adj_table = unit("the", DEFINITE[case][key]), WEAK_ADJ
        elif kind == "a":
            en_article = "an" if (adjectives[0][0] if adjectives else noun.en)[0] in "aeiou" else "a"
            (en_det, de_det), adj_table = unit(en_article, "ein" + EIN_WORD_ENDING[case][key]), MIXED_ADJ
        elif kind == "poss":
            en_word, de_stem = rng.choice(list(POSSESSIVES.items()))
            (en_det, de_det), adj_table = unit(en_word, de_stem + EIN_WORD_ENDING[case][key]), MIXED_ADJ
        else:
            en_word, de_word = rng.choice(list(NUMBERS.items()))
            (en_det, de_det), adj_table = unit(en_word, de_word), None
        endings = STRONG_PLURAL_ADJ[case] if adj_table is None else adj_table[case][key]
        adjective_units = [unit(en, inflect(de, endings)) for en, de in adjectives]
        en_noun = noun.en_plural if plural else noun.en
        de_noun = noun.de_plural if plural else noun.de
        if plural and case == "dat" and not de_noun.endswith(("n", "s")):
            de_noun += "n"  # dative plural: "mit den Hunden"
        en_head, de_head = unit(en_noun, de_noun)
        phrase = Phrase(en_det + [w for en, _ in adjective_units for w in en] + en_head,
                        de_det + [w for _, de in adjective_units for w in de] + de_head,
                        "pl" if plural else "3sg", key)
        if allow_relative and self.chance(0.15):
            relative = self.relative_clause(phrase.key)
            phrase.en += relative.en
            phrase.de += relative.de
        return phrase

    def subject(self) -> Phrase:
        if self.chance(0.25):
            en, (de, person) = self.rng.choice(list(PRONOUNS.items()))
            return Phrase(*unit(en, de), person, "pl" if person == "pl" else "m")
        return self.noun_phrase("nom")

    def prepositional_phrase(self) -> Phrase:
        en_prep, (de_prep, contraction) = self.rng.choice(list(PREPOSITIONS.items()))
        np = self.noun_phrase("dat")
        en_words, de_words = unit(en_prep, de_prep)
        if contraction and np.de[0] == "dem":  # "in dem" → "im": the preposition and the article in one word
            return Phrase(en_words + np.en, [word(contraction, *de_words[0].items, *np.de[0].items)] + np.de[1:])
        return Phrase(en_words + np.en, de_words + np.de)

    def relative_clause(self, key: str) -> Phrase:
        """A subject relative clause: "that sleeps" → ", der schläft" (pronoun agrees with the noun)."""
        that, pronoun = unit("that", DEFINITE["nom"][key])
        clause = self.clause(Phrase([], pronoun, "pl" if key == "pl" else "3sg", key), subordinate=True, nested=True)
        return Phrase(that + clause.en, [COMMA] + clause.de + [COMMA])

    # -- clauses -----------------------------------------------------------------------------------------
    def clause(self, subject: Phrase, *, subordinate: bool, nested: bool = False,
               fronted: list[Word] | None = None) -> Phrase:
        """One clause. German order: main V2 (or V1 after ``fronted``) vs. subordinate verb-final."""
        rng = self.rng
        person = subject.person
        if self.chance(0.12):
            return self.copula_clause(subject, subordinate=subordinate, fronted=fronted)
        transitive = self.chance(0.7)
        verb = rng.choice(TRANSITIVE if transitive else INTRANSITIVE)
        tense = rng.choices(["present", "perfect", "modal"], weights=[6, 2, 2])[0]
        modal = rng.choice(list(MODALS)) if tense == "modal" else ""
        negated = self.chance(0.15) and modal != "must"
        obj = self.noun_phrase("acc", definite_only=negated, allow_relative=not nested) if transitive else None
        has_relative = bool(obj and "," in obj.de)
        # A PP after an object's relative clause would be ambiguous in English: which clause owns it?
        pp = self.prepositional_phrase() if not (negated or has_relative) and self.chance(0.3) else None

        en_verb, finite, right, nicht, lexeme = verb_group(verb, tense, modal, person, negated)

        en = subject.en + en_verb + (obj.en if obj else []) + (pp.en if pp else [])
        middle = (obj.de if obj else []) + ([nicht] if negated else []) + (pp.de if pp else [])
        if has_relative:
            # A relative clause on the object closes the middle field: move it after the right bracket.
            split = obj.de.index(",")
            middle = obj.de[:split] + ([nicht] if negated else []) + (pp.de if pp else [])
            tail = obj.de[split:-1]
        else:
            tail = []
        if subordinate:
            verb_cluster = ([word(verb.prefix + finite, lexeme)] if tense == "present" and verb.prefix
                            else right + [finite])
            de = subject.de + middle + verb_cluster + tail
        elif fronted is not None:
            de = fronted + [finite] + subject.de + middle + right + tail
        else:
            de = subject.de + [finite] + middle + right + tail
        return Phrase(en, de, person, subject.key)

    def copula_clause(self, subject: Phrase, *, subordinate: bool, fronted: list[Word] | None) -> Phrase:
        """ "the dog is (not) big" → "der Hund ist (nicht) groß"."""
        en_adj, de_adj = self.rng.choice(ADJECTIVES)
        negated = self.chance(0.2)
        en_be, de_be = unit({"1sg": "am", "3sg": "is", "pl": "are"}[subject.person],
                            AUXILIARIES["sein"][subject.person])
        (en_adjective, de_adjective), (not_en, nicht) = unit(en_adj, de_adj), unit("not", "nicht")
        en = subject.en + en_be + (not_en if negated else []) + en_adjective
        rest = (nicht if negated else []) + de_adjective
        if subordinate:
            de = subject.de + rest + de_be
        elif fronted is not None:
            de = fronted + de_be + subject.de + rest
        else:
            de = subject.de + de_be + rest
        return Phrase(en, de, subject.person, subject.key)

    # -- sentences ---------------------------------------------------------------------------------------
    def sentence(self) -> tuple[str, str]:
        """An English sentence and its German translation."""
        en, de, _ = self.sentence_with_links()
        return en, de

    def sentence_with_links(self) -> tuple[str, str, str]:
        """An English sentence, its German translation and their gold word alignment (Pharaoh)."""
        en, de = self.sentence_words()
        return _finish(en), _finish(de), gold_links(en, de)

    def sentence_words(self) -> tuple[list[Word], list[Word]]:
        rng = self.rng
        form = rng.choices(["simple", "adverb", "subordinate", "fronted", "reported"], weights=[5, 2, 3, 2, 2])[0]
        if form == "simple":
            phrase = self.clause(self.subject(), subordinate=False)
            return phrase.en, phrase.de
        if form == "adverb":
            en_adverb, de_adverb = unit(*rng.choice(list(ADVERBS.items())))
            phrase = self.clause(self.subject(), subordinate=False, fronted=de_adverb)
            return en_adverb + phrase.en, phrase.de
        if form == "subordinate":
            en_conj, de_conj = unit(*rng.choice(list(CONJUNCTIONS.items())))
            main = self.clause(self.subject(), subordinate=False)
            sub = self.clause(self.subject(), subordinate=True, nested=True)
            return main.en + en_conj + sub.en, main.de + [COMMA] + de_conj + sub.de
        if form == "fronted":
            en_conj, de_conj = unit(*rng.choice(list(CONJUNCTIONS.items())))
            sub = self.clause(self.subject(), subordinate=True, nested=True)
            main = self.clause(self.subject(), subordinate=False, fronted=de_conj + sub.de + [COMMA])
            return en_conj + sub.en + [COMMA] + main.en, main.de
        subject = self.subject()
        verb = rng.choice(SAYING_VERBS)
        person = subject.person
        en_verb, de_verb = unit(verb.en_3sg if person == "3sg" else verb.en,
                                {"1sg": verb.de_1sg, "3sg": verb.de_3sg, "pl": verb.de_plural}[person])
        that, dass = unit("that", "dass")
        sub = self.clause(self.subject(), subordinate=True, nested=True)
        return subject.en + en_verb + that + sub.en, subject.de + de_verb + [COMMA] + dass + sub.de


def verb_group(verb: Verb, tense: str, modal: str, person: str,
               negated: bool) -> tuple[list[Word], Word, list[Word], Word, int]:
    """A clause's verb in both languages: the English words, the German finite verb and right bracket (participle,
    infinitive or separable prefix), the German "nicht" (aligned to English "not") and the verb's lexical item."""
    third = person == "3sg"
    lexeme, negation, auxiliary = next(_ITEMS), next(_ITEMS), next(_ITEMS)  # the verb; "not"; have or modal

    def verb_words(text: str) -> list[Word]:
        return [word(w, lexeme) for w in text.split()]

    not_en, nicht = word("not", negation), word("nicht", negation)
    do = word("does" if third else "do")  # do-support: no German word expresses it
    en_verb: list[Word]
    if tense == "present":
        en_verb = [do, not_en, *verb_words(verb.en)] if negated else verb_words(verb.en_3sg if third else verb.en)
        finite = word({"1sg": verb.de_1sg, "3sg": verb.de_3sg, "pl": verb.de_plural}[person], lexeme)
        right = [word(verb.prefix, lexeme)] if verb.prefix else []
    elif tense == "perfect":
        en_verb = ([word("has" if third else "have", auxiliary)] + ([not_en] if negated else [])
                   + verb_words(verb.en_participle))
        finite = word(AUXILIARIES[verb.aux][person], auxiliary)
        right = [word(verb.de_participle, lexeme)]
    else:
        en_3sg, en_other, de_1sg, de_3sg, de_pl = MODALS[modal]
        modal_words = [word(w, auxiliary) for w in (en_3sg if third else en_other).split()]
        if negated:
            modal_words = ([word("cannot", auxiliary, negation)] if modal == "can"
                           else [do, not_en, word("want", auxiliary), word("to", auxiliary)])
        en_verb = modal_words + verb_words(verb.en)
        finite = word({"1sg": de_1sg, "3sg": de_3sg, "pl": de_pl}[person], auxiliary)
        right = [word(verb.prefix + verb.de_plural, lexeme)]
    return en_verb, finite, right, nicht, lexeme


AUXILIARIES = {"haben": {"1sg": "habe", "3sg": "hat", "pl": "haben"},
               "sein": {"1sg": "bin", "3sg": "ist", "pl": "sind"}}


def inflect(adjective: str, ending: str) -> str:
    """Attach an adjective ending; a stem's final -e merges with it: müde + en → müden, not müdeen."""
    if adjective.endswith("e") and ending.startswith("e"):
        return adjective + ending[1:]
    return adjective + ending


def _finish(words: list[Word]) -> str:
    """Join words, attach commas, capitalise the first letter and add a full stop."""
    text = " ".join(words).replace(" ,", ",")
    return text[0].upper() + text[1:] + "."


# ---------------------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------------------

SPLITS = {"train": 20_000, "valid": 1_000, "test": 1_000}
MIN_WORDS, MAX_WORDS = 3, 25


def generate(seed: int) -> dict[str, list[tuple[str, str]]]:
    """Draw distinct sentence pairs; valid and test first, so train never repeats their sources."""
    return {name: [(en, de) for en, de, _ in triples] for name, triples in generate_with_links(seed).items()}


def generate_with_links(seed: int) -> dict[str, list[tuple[str, str, str]]]:
    """The pairs of :func:`generate`, each with its gold word alignment."""
    grammar = Grammar(random.Random(seed))
    seen: set[str] = set()
    splits: dict[str, list[tuple[str, str, str]]] = {}
    for name in ("valid", "test", "train"):
        triples: list[tuple[str, str, str]] = []
        while len(triples) < SPLITS[name]:
            en, de, links = grammar.sentence_with_links()
            if en in seen or not MIN_WORDS <= len(en.split()) <= MAX_WORDS:
                continue
            seen.add(en)
            triples.append((en, de, links))
        splits[name] = triples
    return splits


def lexicon_size() -> int:
    """Number of distinct English words the grammar can produce (the corpus README cites it)."""
    words = {w for n in NOUNS for w in (n.en, n.en_plural)}
    words |= {a for a, _ in ADJECTIVES}
    for v in TRANSITIVE + INTRANSITIVE + SAYING_VERBS:
        words |= set(f"{v.en} {v.en_3sg} {v.en_participle}".split())
    for table in (PRONOUNS, NUMBERS, POSSESSIVES, PREPOSITIONS, ADVERBS, CONJUNCTIONS):
        words |= {w for phrase in table for w in phrase.split()}
    return len(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "toy")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, triples in generate_with_links(args.seed).items():
        for index, suffix in enumerate(("en", "de", "align")):
            if suffix == "align" and name == "train":
                continue  # gold alignments measure; nothing trains on them
            text = "".join(triple[index] + "\n" for triple in triples)
            (args.out / f"{name}.{suffix}").write_text(text, encoding="utf-8")
    print(f"wrote {sum(SPLITS.values())} pairs to {args.out} (English lexicon: {lexicon_size()} words)")


if __name__ == "__main__":
    main()
