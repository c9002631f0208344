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

Usage: python scripts/make_toy_corpus.py [--out data/toy] [--seed 1234]
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

# ---------------------------------------------------------------------------------------------------------
# Lexicon
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Noun:
    en: str
    en_plural: str
    de: str
    de_plural: str
    gender: str  # "m", "f" or "n"


@dataclass(frozen=True)
class Verb:
    """English base / 3rd-singular / participle, German 1sg / 3sg / plural / participle.

    ``prefix`` is the separable German prefix (``an`` in "ruft ... an"); ``aux`` is the German perfect
    auxiliary. German infinitive equals the plural form (plus the prefix for separable verbs).
    """

    en: str
    en_3sg: str
    en_participle: str
    de_1sg: str
    de_3sg: str
    de_plural: str
    de_participle: str
    prefix: str = ""
    aux: str = "haben"


def _nouns(rows: str, gender: str) -> list[Noun]:
    out = []
    for row in rows.strip().splitlines():
        en, en_pl, de, de_pl = row.split()
        out.append(Noun(en, en_pl, de, de_pl, gender))
    return out


NOUNS = (
    _nouns(
        """
        man men Mann Männer
        dog dogs Hund Hunde
        teacher teachers Lehrer Lehrer
        doctor doctors Arzt Ärzte
        friend friends Freund Freunde
        father fathers Vater Väter
        brother brothers Bruder Brüder
        son sons Sohn Söhne
        king kings König Könige
        cook cooks Koch Köche
        driver drivers Fahrer Fahrer
        baker bakers Bäcker Bäcker
        painter painters Maler Maler
        singer singers Sänger Sänger
        guest guests Gast Gäste
        thief thieves Dieb Diebe
        bird birds Vogel Vögel
        table tables Tisch Tische
        chair chairs Stuhl Stühle
        train trains Zug Züge
        ball balls Ball Bälle
        letter letters Brief Briefe
        apple apples Apfel Äpfel
        cake cakes Kuchen Kuchen
        coat coats Mantel Mäntel
        hat hats Hut Hüte
        key keys Schlüssel Schlüssel
        garden gardens Garten Gärten
        park parks Park Parks
        forest forests Wald Wälder
        river rivers Fluss Flüsse
        mountain mountains Berg Berge
        tree trees Baum Bäume
        plate plates Teller Teller
        spoon spoons Löffel Löffel
        computer computers Computer Computer
        film films Film Filme
        shoe shoes Schuh Schuhe
        ring rings Ring Ringe
        stone stones Stein Steine
        tower towers Turm Türme
        """,
        "m",
    )
    + _nouns(
        """
        woman women Frau Frauen
        mother mothers Mutter Mütter
        sister sisters Schwester Schwestern
        daughter daughters Tochter Töchter
        queen queens Königin Königinnen
        cat cats Katze Katzen
        mouse mice Maus Mäuse
        door doors Tür Türen
        lamp lamps Lampe Lampen
        bottle bottles Flasche Flaschen
        cup cups Tasse Tassen
        city cities Stadt Städte
        street streets Straße Straßen
        school schools Schule Schulen
        church churches Kirche Kirchen
        flower flowers Blume Blumen
        newspaper newspapers Zeitung Zeitungen
        bag bags Tasche Taschen
        jacket jackets Jacke Jacken
        box boxes Kiste Kisten
        clock clocks Uhr Uhren
        question questions Frage Fragen
        story stories Geschichte Geschichten
        soup soups Suppe Suppen
        banana bananas Banane Bananen
        pear pears Birne Birnen
        island islands Insel Inseln
        kitchen kitchens Küche Küchen
        bridge bridges Brücke Brücken
        cow cows Kuh Kühe
        duck ducks Ente Enten
        wall walls Wand Wände
        """,
        "f",
    )
    + _nouns(
        """
        child children Kind Kinder
        girl girls Mädchen Mädchen
        book books Buch Bücher
        house houses Haus Häuser
        car cars Auto Autos
        horse horses Pferd Pferde
        window windows Fenster Fenster
        picture pictures Bild Bilder
        egg eggs Ei Eier
        glass glasses Glas Gläser
        boat boats Boot Boote
        song songs Lied Lieder
        bed beds Bett Betten
        shirt shirts Hemd Hemden
        dress dresses Kleid Kleider
        pig pigs Schwein Schweine
        game games Spiel Spiele
        gift gifts Geschenk Geschenke
        phone phones Telefon Telefone
        village villages Dorf Dörfer
        hotel hotels Hotel Hotels
        room rooms Zimmer Zimmer
        piano pianos Klavier Klaviere
        bicycle bicycles Fahrrad Fahrräder
        animal animals Tier Tiere
        knife knives Messer Messer
        photo photos Foto Fotos
        airplane airplanes Flugzeug Flugzeuge
        ship ships Schiff Schiffe
        """,
        "n",
    )
)

ADJECTIVES = [
    tuple(pair.split(":"))
    for pair in """
    big:groß small:klein old:alt young:jung new:neu red:rot blue:blau green:grün black:schwarz
    white:weiß yellow:gelb beautiful:schön ugly:hässlich happy:glücklich sad:traurig tired:müde
    hungry:hungrig fast:schnell slow:langsam cheap:billig heavy:schwer light:leicht warm:warm
    cold:kalt hot:heiß clean:sauber dirty:schmutzig long:lang short:kurz strong:stark weak:schwach
    rich:reich poor:arm clever:klug friendly:freundlich famous:berühmt strange:seltsam quiet:ruhig
    loud:laut empty:leer full:voll round:rund soft:weich sweet:süß fresh:frisch wet:nass dry:trocken
    brave:mutig lazy:faul funny:lustig angry:wütend brown:braun grey:grau
    """.split()
]


def _verbs(rows: str, **extra: str) -> list[Verb]:
    """Rows of ``en|en_3sg|en_pp|de_1sg|de_3sg|de_pl|de_pp[|prefix[|aux]]``."""
    out = []
    for row in rows.strip().splitlines():
        fields = [f.strip() for f in row.split("|")]
        prefix = fields[7] if len(fields) > 7 else ""
        aux = fields[8] if len(fields) > 8 else extra.get("aux", "haben")
        out.append(Verb(*fields[:7], prefix=prefix, aux=aux))
    return out


TRANSITIVE = _verbs(
    """
    see|sees|seen|sehe|sieht|sehen|gesehen
    read|reads|read|lese|liest|lesen|gelesen
    buy|buys|bought|kaufe|kauft|kaufen|gekauft
    sell|sells|sold|verkaufe|verkauft|verkaufen|verkauft
    find|finds|found|finde|findet|finden|gefunden
    lose|loses|lost|verliere|verliert|verlieren|verloren
    carry|carries|carried|trage|trägt|tragen|getragen
    need|needs|needed|brauche|braucht|brauchen|gebraucht
    love|loves|loved|liebe|liebt|lieben|geliebt
    paint|paints|painted|male|malt|malen|gemalt
    wash|washes|washed|wasche|wäscht|waschen|gewaschen
    eat|eats|eaten|esse|isst|essen|gegessen
    drink|drinks|drunk|trinke|trinkt|trinken|getrunken
    write|writes|written|schreibe|schreibt|schreiben|geschrieben
    build|builds|built|baue|baut|bauen|gebaut
    cook|cooks|cooked|koche|kocht|kochen|gekocht
    hear|hears|heard|höre|hört|hören|gehört
    visit|visits|visited|besuche|besucht|besuchen|besucht
    catch|catches|caught|fange|fängt|fangen|gefangen
    hold|holds|held|halte|hält|halten|gehalten
    take|takes|taken|nehme|nimmt|nehmen|genommen
    bring|brings|brought|bringe|bringt|bringen|gebracht
    forget|forgets|forgotten|vergesse|vergisst|vergessen|vergessen
    look for|looks for|looked for|suche|sucht|suchen|gesucht
    choose|chooses|chosen|wähle|wählt|wählen|gewählt
    draw|draws|drawn|zeichne|zeichnet|zeichnen|gezeichnet
    kiss|kisses|kissed|küsse|küsst|küssen|geküsst
    meet|meets|met|treffe|trifft|treffen|getroffen
    know|knows|known|kenne|kennt|kennen|gekannt
    throw|throws|thrown|werfe|wirft|werfen|geworfen
    steal|steals|stolen|stehle|stiehlt|stehlen|gestohlen
    repair|repairs|repaired|repariere|repariert|reparieren|repariert
    order|orders|ordered|bestelle|bestellt|bestellen|bestellt
    count|counts|counted|zähle|zählt|zählen|gezählt
    clean|cleans|cleaned|putze|putzt|putzen|geputzt
    feed|feeds|fed|füttere|füttert|füttern|gefüttert
    watch|watches|watched|beobachte|beobachtet|beobachten|beobachtet
    hide|hides|hidden|verstecke|versteckt|verstecken|versteckt
    send|sends|sent|schicke|schickt|schicken|geschickt
    pay for|pays for|paid for|bezahle|bezahlt|bezahlen|bezahlt
    push|pushes|pushed|schiebe|schiebt|schieben|geschoben
    pull|pulls|pulled|ziehe|zieht|ziehen|gezogen
    call|calls|called|rufe|ruft|rufen|angerufen|an
    open|opens|opened|mache|macht|machen|aufgemacht|auf
    close|closes|closed|mache|macht|machen|zugemacht|zu
    pick up|picks up|picked up|hole|holt|holen|abgeholt|ab
    invite|invites|invited|lade|lädt|laden|eingeladen|ein
    look at|looks at|looked at|sehe|sieht|sehen|angesehen|an
    turn on|turns on|turned on|schalte|schaltet|schalten|eingeschaltet|ein
    turn off|turns off|turned off|schalte|schaltet|schalten|ausgeschaltet|aus
    bring back|brings back|brought back|bringe|bringt|bringen|zurückgebracht|zurück
    accept|accepts|accepted|nehme|nimmt|nehmen|angenommen|an
    tidy up|tidies up|tidied up|räume|räumt|räumen|aufgeräumt|auf
    try on|tries on|tried on|probiere|probiert|probieren|anprobiert|an
    write down|writes down|written down|schreibe|schreibt|schreiben|aufgeschrieben|auf
    """
)

INTRANSITIVE = _verbs(
    """
    sleep|sleeps|slept|schlafe|schläft|schlafen|geschlafen
    laugh|laughs|laughed|lache|lacht|lachen|gelacht
    work|works|worked|arbeite|arbeitet|arbeiten|gearbeitet
    play|plays|played|spiele|spielt|spielen|gespielt
    wait|waits|waited|warte|wartet|warten|gewartet
    dance|dances|danced|tanze|tanzt|tanzen|getanzt
    cry|cries|cried|weine|weint|weinen|geweint
    live|lives|lived|wohne|wohnt|wohnen|gewohnt
    sit|sits|sat|sitze|sitzt|sitzen|gesessen
    stand|stands|stood|stehe|steht|stehen|gestanden
    smile|smiles|smiled|lächle|lächelt|lächeln|gelächelt
    swim|swims|swum|schwimme|schwimmt|schwimmen|geschwommen||sein
    run|runs|run|laufe|läuft|laufen|gelaufen||sein
    come|comes|come|komme|kommt|kommen|gekommen||sein
    go|goes|gone|gehe|geht|gehen|gegangen||sein
    travel|travels|travelled|reise|reist|reisen|gereist||sein
    wake up|wakes up|woken up|wache|wacht|wachen|aufgewacht|auf|sein
    get up|gets up|got up|stehe|steht|stehen|aufgestanden|auf|sein
    come back|comes back|come back|komme|kommt|kommen|zurückgekommen|zurück|sein
    fall asleep|falls asleep|fallen asleep|schlafe|schläft|schlafen|eingeschlafen|ein|sein
    """
)

# English subject pronoun -> (German pronoun, person key used for agreement).
PRONOUNS = {"I": ("ich", "1sg"), "he": ("er", "3sg"), "she": ("sie", "3sg"), "we": ("wir", "pl"),
            "they": ("sie", "pl")}
NUMBERS = {"two": "zwei", "three": "drei", "four": "vier", "five": "fünf", "six": "sechs", "seven": "sieben",
           "eight": "acht", "nine": "neun", "ten": "zehn", "eleven": "elf", "twelve": "zwölf"}
POSSESSIVES = {"my": "mein", "his": "sein", "her": "ihr", "our": "unser"}
# Dative prepositions (locative use); the contraction with the masculine/neuter definite article.
PREPOSITIONS = {"with": ("mit", None), "in": ("in", "im"), "from": ("von", "vom"), "next to": ("neben", None),
                "behind": ("hinter", None), "under": ("unter", None), "on": ("auf", None)}
ADVERBS = {"today": "heute", "yesterday": "gestern", "tomorrow": "morgen", "now": "jetzt", "often": "oft",
           "sometimes": "manchmal", "unfortunately": "leider", "in the morning": "morgens",
           "in the evening": "abends"}
CONJUNCTIONS = {"because": "weil", "although": "obwohl", "while": "während", "if": "wenn", "before": "bevor",
                "until": "bis"}
SAYING_VERBS = _verbs(
    """
    say|says|said|sage|sagt|sagen|gesagt
    think|thinks|thought|denke|denkt|denken|gedacht
    believe|believes|believed|glaube|glaubt|glauben|geglaubt
    know|knows|known|weiß|weiß|wissen|gewusst
    hope|hopes|hoped|hoffe|hofft|hoffen|gehofft
    """
)
MODALS = {  # English 3sg, English non-3sg, German 1sg, 3sg, plural, English negation
    "want": ("wants to", "want to", "will", "will", "wollen"),
    "can": ("can", "can", "kann", "kann", "können"),
    "must": ("must", "must", "muss", "muss", "müssen"),
}

# German declension tables: case -> gender/number ("m", "f", "n", "pl") -> form.
DEFINITE = {"nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
            "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
            "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "den"}}
EIN_WORD_ENDING = {"nom": {"m": "", "f": "e", "n": "", "pl": "e"},
                   "acc": {"m": "en", "f": "e", "n": "", "pl": "e"},
                   "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"}}
WEAK_ADJ = {"nom": {"m": "e", "f": "e", "n": "e", "pl": "en"},
            "acc": {"m": "en", "f": "e", "n": "e", "pl": "en"},
            "dat": {"m": "en", "f": "en", "n": "en", "pl": "en"}}
MIXED_ADJ = {"nom": {"m": "er", "f": "e", "n": "es", "pl": "en"},
             "acc": {"m": "en", "f": "e", "n": "es", "pl": "en"},
             "dat": {"m": "en", "f": "en", "n": "en", "pl": "en"}}
STRONG_PLURAL_ADJ = {"nom": "e", "acc": "e", "dat": "en"}

# ---------------------------------------------------------------------------------------------------------
# Grammar
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Phrase:
    """A phrase in both languages, plus German agreement features."""

    en: list[str]
    de: list[str]
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
        en_det: list[str]
        if kind == "the":
            en_det, de_det, adj_table = ["the"], [DEFINITE[case][key]], WEAK_ADJ
        elif kind == "a":
            en_article = "an" if (adjectives[0][0] if adjectives else noun.en)[0] in "aeiou" else "a"
            en_det, de_det, adj_table = [en_article], ["ein" + EIN_WORD_ENDING[case][key]], MIXED_ADJ
        elif kind == "poss":
            en_word, de_stem = rng.choice(list(POSSESSIVES.items()))
            en_det, de_det, adj_table = [en_word], [de_stem + EIN_WORD_ENDING[case][key]], MIXED_ADJ
        else:
            en_word, de_word = rng.choice(list(NUMBERS.items()))
            en_det, de_det, adj_table = [en_word], [de_word], None
        if adj_table is None:
            de_adjs = [inflect(de, STRONG_PLURAL_ADJ[case]) for _, de in adjectives]
        else:
            de_adjs = [inflect(de, adj_table[case][key]) for _, de in adjectives]
        en_noun = noun.en_plural if plural else noun.en
        de_noun = noun.de_plural if plural else noun.de
        if plural and case == "dat" and not de_noun.endswith(("n", "s")):
            de_noun += "n"  # dative plural: "mit den Hunden"
        phrase = Phrase(en_det + [a for a, _ in adjectives] + [en_noun], de_det + de_adjs + [de_noun],
                        "pl" if plural else "3sg", key)
        if allow_relative and self.chance(0.15):
            relative = self.relative_clause(phrase.key)
            phrase.en += relative.en
            phrase.de += relative.de
        return phrase

    def subject(self) -> Phrase:
        if self.chance(0.25):
            en, (de, person) = self.rng.choice(list(PRONOUNS.items()))
            return Phrase([en], [de], person, "pl" if person == "pl" else "m")
        return self.noun_phrase("nom")

    def prepositional_phrase(self) -> Phrase:
        en_prep, (de_prep, contraction) = self.rng.choice(list(PREPOSITIONS.items()))
        np = self.noun_phrase("dat")
        if contraction and np.de[0] == "dem":
            return Phrase(en_prep.split() + np.en, [contraction] + np.de[1:])
        return Phrase(en_prep.split() + np.en, [de_prep] + np.de)

    def relative_clause(self, key: str) -> Phrase:
        """A subject relative clause: "that sleeps" → ", der schläft" (pronoun agrees with the noun)."""
        clause = self.clause(Phrase([], [DEFINITE["nom"][key]], "pl" if key == "pl" else "3sg", key),
                             subordinate=True, nested=True)
        return Phrase(["that"] + clause.en, [","] + clause.de + [","])

    # -- clauses -----------------------------------------------------------------------------------------
    def clause(self, subject: Phrase, *, subordinate: bool, nested: bool = False,
               fronted: list[str] | None = None) -> Phrase:
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

        third = person == "3sg"
        en_verb: list[str]
        if tense == "present":
            if negated:
                en_verb = ["does" if third else "do", "not", verb.en]
            else:
                en_verb = [verb.en_3sg if third else verb.en]
            finite = {"1sg": verb.de_1sg, "3sg": verb.de_3sg, "pl": verb.de_plural}[person]
            right = [verb.prefix] if verb.prefix else []
        elif tense == "perfect":
            en_verb = ["has" if third else "have"] + (["not"] if negated else []) + [verb.en_participle]
            finite = AUXILIARIES[verb.aux][person]
            right = [verb.de_participle]
        else:
            en_3sg, en_other, de_1sg, de_3sg, de_pl = MODALS[modal]
            words = (en_3sg if third else en_other).split()
            if negated:
                words = ["cannot"] if modal == "can" else ["does" if third else "do", "not", "want", "to"]
            en_verb = words + [verb.en]
            finite = {"1sg": de_1sg, "3sg": de_3sg, "pl": de_pl}[person]
            right = [verb.prefix + verb.de_plural]
        en_verb = [w for part in en_verb for w in part.split()]

        en = subject.en + en_verb + (obj.en if obj else []) + (pp.en if pp else [])
        middle = (obj.de if obj else []) + (["nicht"] if negated else []) + (pp.de if pp else [])
        if has_relative:
            # A relative clause on the object closes the middle field: move it after the right bracket.
            split = obj.de.index(",")
            middle = obj.de[:split] + (["nicht"] if negated else []) + (pp.de if pp else [])
            tail = obj.de[split:-1]
        else:
            tail = []
        if subordinate:
            verb_cluster = ([verb.prefix + finite] if tense == "present" and verb.prefix else right + [finite])
            de = subject.de + middle + verb_cluster + tail
        elif fronted is not None:
            de = fronted + [finite] + subject.de + middle + right + tail
        else:
            de = subject.de + [finite] + middle + right + tail
        return Phrase(en, de, person, subject.key)

    def copula_clause(self, subject: Phrase, *, subordinate: bool, fronted: list[str] | None) -> Phrase:
        """ "the dog is (not) big" → "der Hund ist (nicht) groß"."""
        en_adj, de_adj = self.rng.choice(ADJECTIVES)
        negated = self.chance(0.2)
        en_be = {"1sg": "am", "3sg": "is", "pl": "are"}[subject.person]
        de_be = AUXILIARIES["sein"][subject.person]
        en = subject.en + [en_be] + (["not"] if negated else []) + [en_adj]
        rest = (["nicht"] if negated else []) + [de_adj]
        if subordinate:
            de = subject.de + rest + [de_be]
        elif fronted is not None:
            de = fronted + [de_be] + subject.de + rest
        else:
            de = subject.de + [de_be] + rest
        return Phrase(en, de, subject.person, subject.key)

    # -- sentences ---------------------------------------------------------------------------------------
    def sentence(self) -> tuple[str, str]:
        rng = self.rng
        form = rng.choices(["simple", "adverb", "subordinate", "fronted", "reported"], weights=[5, 2, 3, 2, 2])[0]
        if form == "simple":
            phrase = self.clause(self.subject(), subordinate=False)
            en, de = phrase.en, phrase.de
        elif form == "adverb":
            en_adv, de_adv = rng.choice(list(ADVERBS.items()))
            phrase = self.clause(self.subject(), subordinate=False, fronted=[de_adv])
            en, de = en_adv.split() + phrase.en, phrase.de
        elif form == "subordinate":
            en_conj, de_conj = rng.choice(list(CONJUNCTIONS.items()))
            main = self.clause(self.subject(), subordinate=False)
            sub = self.clause(self.subject(), subordinate=True, nested=True)
            en, de = main.en + [en_conj] + sub.en, main.de + [",", de_conj] + sub.de
        elif form == "fronted":
            en_conj, de_conj = rng.choice(list(CONJUNCTIONS.items()))
            sub = self.clause(self.subject(), subordinate=True, nested=True)
            main = self.clause(self.subject(), subordinate=False, fronted=[de_conj] + sub.de + [","])
            en, de = [en_conj] + sub.en + [","] + main.en, main.de
        else:
            subject = self.subject()
            verb = rng.choice(SAYING_VERBS)
            person = subject.person
            en_verb = verb.en_3sg if person == "3sg" else verb.en
            de_verb = {"1sg": verb.de_1sg, "3sg": verb.de_3sg, "pl": verb.de_plural}[person]
            sub = self.clause(self.subject(), subordinate=True, nested=True)
            en = subject.en + [en_verb, "that"] + sub.en
            de = subject.de + [de_verb, ",", "dass"] + sub.de
        return _finish(en), _finish(de)


AUXILIARIES = {"haben": {"1sg": "habe", "3sg": "hat", "pl": "haben"},
               "sein": {"1sg": "bin", "3sg": "ist", "pl": "sind"}}


def inflect(adjective: str, ending: str) -> str:
    """Attach an adjective ending; a stem's final -e merges with it: müde + en → müden, not müdeen."""
    if adjective.endswith("e") and ending.startswith("e"):
        return adjective + ending[1:]
    return adjective + ending


def _finish(words: list[str]) -> str:
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
    grammar = Grammar(random.Random(seed))
    seen: set[str] = set()
    splits: dict[str, list[tuple[str, str]]] = {}
    for name in ("valid", "test", "train"):
        pairs: list[tuple[str, str]] = []
        while len(pairs) < SPLITS[name]:
            en, de = grammar.sentence()
            if en in seen or not MIN_WORDS <= len(en.split()) <= MAX_WORDS:
                continue
            seen.add(en)
            pairs.append((en, de))
        splits[name] = pairs
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
    for name, pairs in generate(args.seed).items():
        for index, lang in enumerate(("en", "de")):
            text = "".join(pair[index] + "\n" for pair in pairs)
            (args.out / f"{name}.{lang}").write_text(text, encoding="utf-8")
    print(f"wrote {sum(SPLITS.values())} pairs to {args.out} (English lexicon: {lexicon_size()} words)")


if __name__ == "__main__":
    main()
