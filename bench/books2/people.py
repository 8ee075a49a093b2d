"""Clients of the second world: people and companies in several languages, and how banks print them."""

from __future__ import annotations

import random
import unicodedata

FIRST = {
    "pl": [
        "Jan",
        "Agnieszka",
        "Łukasz",
        "Małgorzata",
        "Paweł",
        "Zofia",
        "Krzysztof",
        "Ewa",
        "Tomasz",
        "Katarzyna",
        "Michał",
        "Joanna",
        "Piotr",
        "Dorota",
        "Grzegorz",
        "Beata",
        "Marek",
        "Iwona",
        "Wojciech",
        "Halina",
    ],
    "cs": [
        "Jiří",
        "Lenka",
        "Tomáš",
        "Petra",
        "Radek",
        "Věra",
        "Ondřej",
        "Hana",
        "Petr",
        "Jana",
        "Martin",
        "Eva",
        "Pavel",
        "Alena",
        "Jakub",
        "Zuzana",
        "Lukáš",
        "Markéta",
        "Vojtěch",
        "Kateřina",
    ],
    "es": [
        "José",
        "María",
        "Íñigo",
        "Lucía",
        "Andrés",
        "Begoña",
        "Raúl",
        "Núria",
        "Carmen",
        "Javier",
        "Pilar",
        "Sergio",
        "Rocío",
        "Alberto",
        "Elena",
        "Jorge",
        "Marta",
        "Álvaro",
        "Nieves",
        "Pablo",
    ],
    "pt": [
        "João",
        "Inês",
        "Gonçalo",
        "Conceição",
        "Rui",
        "Mafalda",
        "Sebastião",
        "Leonor",
        "Tiago",
        "Beatriz",
        "Duarte",
        "Joana",
        "Nuno",
        "Catarina",
        "André",
        "Sofia",
        "Vasco",
        "Marta",
        "Hélder",
        "Teresa",
    ],
    "nl": [
        "Joris",
        "Femke",
        "Daan",
        "Sanne",
        "Pieter",
        "Lotte",
        "Bram",
        "Anouk",
        "Thijs",
        "Eva",
        "Sem",
        "Fleur",
        "Ruben",
        "Iris",
        "Jesse",
        "Noor",
        "Lars",
        "Maud",
        "Wouter",
        "Jet",
    ],
    "sv": [
        "Åsa",
        "Björn",
        "Märta",
        "Göran",
        "Linnéa",
        "Örjan",
        "Sofia",
        "Nils",
        "Erik",
        "Karin",
        "Anders",
        "Ingrid",
        "Lars",
        "Elsa",
        "Håkan",
        "Maja",
        "Per",
        "Astrid",
        "Sven",
        "Ebba",
    ],
    "tr": [
        "Ömer",
        "Şule",
        "Çağrı",
        "Gülşen",
        "İbrahim",
        "Özlem",
        "Barış",
        "Ayşe",
        "Mehmet",
        "Elif",
        "Mustafa",
        "Zeynep",
        "Emre",
        "Merve",
        "Hakan",
        "Büşra",
        "Serkan",
        "Derya",
        "Oğuz",
        "Tuğba",
    ],
    "fr": [
        "Hélène",
        "François",
        "Amélie",
        "Jérôme",
        "Noémie",
        "Loïc",
        "Cécile",
        "Théo",
        "Élodie",
        "Julien",
        "Mathilde",
        "Benoît",
        "Léa",
        "Sébastien",
        "Chloé",
        "Rémi",
        "Manon",
        "Anaïs",
        "Gaël",
        "Margaux",
    ],
}
LAST = {
    "pl": [
        "Nowak",
        "Wiśniewski",
        "Wójcik",
        "Kamińska",
        "Zieliński",
        "Szymańska",
        "Dąbrowski",
        "Kowalczyk",
        "Lewandowska",
        "Woźniak",
        "Mazur",
        "Krawczyk",
        "Piotrowski",
        "Grabowska",
        "Pawłowski",
        "Michalska",
        "Król",
        "Jabłoński",
        "Wróbel",
        "Nowicka",
    ],
    "cs": [
        "Novák",
        "Dvořáková",
        "Černý",
        "Procházka",
        "Kučerová",
        "Veselý",
        "Horáková",
        "Svoboda",
        "Novotná",
        "Krejčí",
        "Marek",
        "Pospíšilová",
        "Hájek",
        "Jelínková",
        "Růžička",
        "Beneš",
        "Fialová",
        "Sedláček",
        "Doležal",
        "Zemanová",
    ],
    "es": [
        "García Pérez",
        "Martínez",
        "Sánchez Ruiz",
        "Muñoz",
        "Jiménez",
        "Álvarez",
        "Ibáñez",
        "López",
        "Gómez Ortega",
        "Díaz",
        "Moreno",
        "Romero Gil",
        "Navarro",
        "Torres",
        "Domínguez",
        "Vázquez",
        "Ramos",
        "Castillo Peña",
        "Ortiz",
        "Rubio",
    ],
    "pt": [
        "Gonçalves",
        "Magalhães",
        "Conceição",
        "Araújo",
        "Simões",
        "Loureiro",
        "Brandão",
        "Ferreira",
        "Pereira",
        "Carvalho",
        "Ribeiro",
        "Martins",
        "Sousa",
        "Fernandes",
        "Gomes",
        "Lopes",
        "Marques",
        "Nogueira",
        "Pinto",
        "Teixeira",
    ],
    "nl": [
        "de Vries",
        "van den Berg",
        "Jansen",
        "Bakker",
        "van Dijk",
        "de Jong",
        "Visser",
        "Smit",
        "Meijer",
        "de Boer",
        "Mulder",
        "de Groot",
        "Bos",
        "Vos",
        "Peters",
        "Hendriks",
        "van Leeuwen",
        "Dekker",
        "Brouwer",
        "de Wit",
    ],
    "sv": [
        "Lindqvist",
        "Åkesson",
        "Ström",
        "Bergström",
        "Öberg",
        "Nyström",
        "Sjöberg",
        "Andersson",
        "Johansson",
        "Karlsson",
        "Nilsson",
        "Eriksson",
        "Larsson",
        "Olsson",
        "Persson",
        "Svensson",
        "Gustafsson",
        "Pettersson",
        "Jönsson",
        "Hedlund",
    ],
    "tr": [
        "Yılmaz",
        "Şahin",
        "Çelik",
        "Öztürk",
        "Doğan",
        "Kılıç",
        "Aydın",
        "Arslan",
        "Koç",
        "Kurt",
        "Özdemir",
        "Aslan",
        "Çetin",
        "Kara",
        "Koçak",
        "Yıldız",
        "Yıldırım",
        "Erdoğan",
        "Güneş",
        "Polat",
    ],
    "fr": [
        "Lefèvre",
        "Girard",
        "Bérénger",
        "Mercier",
        "Faure",
        "Rousseau",
        "Chevalier",
        "Durand",
        "Dubois",
        "Moreau",
        "Laurent",
        "Simon",
        "Michel",
        "Lefebvre",
        "Leroy",
        "Roux",
        "David",
        "Bertrand",
        "Morel",
        "Fournier",
    ],
}
FORMS = {
    "pl": ["Sp. z o.o.", "S.A.", "sp.j."],
    "cs": ["s.r.o.", "a.s."],
    "es": ["S.L.", "S.A.", "S.L.U."],
    "pt": ["Lda.", "S.A.", "Unipessoal Lda."],
    "nl": ["B.V.", "V.O.F.", "N.V."],
    "sv": ["AB", "HB", "Aktiebolag"],
    "tr": ["Ltd. Şti.", "A.Ş."],
    "fr": ["SARL", "SAS", "EURL"],
}
TRADES = ["Web", "Digital", "Studio", "Media", "Soluciones", "Systemy", "Consult", "Data", "Net"]
TITLES = ["Dr.", "Ing.", "Mgr.", "Prof.", "Dra.", "Drs.", "Me"]
SURNAME_FIRST = {"cs", "tr", "pl"}  # banks of these countries often print the surname first


def plain(text: str) -> str:
    """Diacritics dropped as a bank's character set does (ł, ø, ß and ı transliterated)."""
    table: dict[str, str | int | None] = {"ł": "l", "Ł": "L", "ø": "o", "ß": "ss", "ı": "i"}
    text = text.translate(str.maketrans(table))
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def make_client(rng: random.Random, language: str) -> tuple[str, str, str, str]:
    """(first, last, person name as WHMCS holds it, company name or "")."""
    first = rng.choice(FIRST[language])
    last = rng.choice(LAST[language])
    person = f"{first} {last}"
    company = ""
    if rng.random() < 0.35:
        core = last.split()[-1] if rng.random() < 0.5 else rng.choice(TRADES) + rng.choice(TRADES)
        company = f"{core} {rng.choice(TRADES)} {rng.choice(FORMS[language])}"
    return first, last, person, company


def bank_name(
    rng: random.Random, first: str, last: str, company: str, language: str, field: int
) -> str:
    """How this payer's bank prints the name: order, initials, titles, forms, case, length."""
    if company and rng.random() < 0.6:
        name = company
        roll = rng.random()
        if roll < 0.3:  # company form dropped
            name = name.rsplit(" ", 1)[0] if "." not in name.split()[-1] else name
            for forms in FORMS.values():
                for form in forms:
                    name = name.removesuffix(" " + form)
        elif roll < 0.45:
            name = name.replace(" ", "", 1)
    else:
        roll = rng.random()
        if roll < 0.25 or (language in SURNAME_FIRST and roll < 0.55):
            name = f"{last} {first}" if rng.random() < 0.6 else f"{last}, {first}"
        elif roll < 0.7:
            name = f"{first[0]}. {last}" if rng.random() < 0.5 else f"{first[0]} {last}"
        else:
            name = f"{first} {last}"
        if rng.random() < 0.1:
            name = f"{rng.choice(TITLES)} {name}"
        if rng.random() < 0.12:
            name = f"{name} u. {rng.choice(FIRST[language])} {last}"  # joint account
    if rng.random() < 0.7:
        name = plain(name)
    if rng.random() < 0.55:
        name = name.upper()
    return name[:field].rstrip()


def stranger(rng: random.Random) -> str:
    """A payer who is no client."""
    language = rng.choice(sorted(FIRST))
    return plain(f"{rng.choice(LAST[language])} {rng.choice(FIRST[language])}").upper()
