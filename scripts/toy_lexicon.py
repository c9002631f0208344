"""The toy corpus's lexicon: English words with their German translations, genders, plurals and verb forms, and
the German article and adjective endings (used by ``scripts/make_toy_corpus.py``; its own module so that the
generator reads as a grammar).
"""

from __future__ import annotations

from dataclasses import dataclass


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
