"""Names, companies, suppliers and prices the synthetic world draws from."""

from __future__ import annotations

import numpy as np

_EPOCH = np.datetime64("1970-01-01", "D")


def _words(text: str, sep: str = " ") -> tuple[str, ...]:
    return tuple(word for word in text.split(sep) if word)


FIRST_NAMES = _words(
    "John James Robert Michael William David Richard Joseph Thomas Charles Mary Patricia Jennifer "
    "Linda Elizabeth Barbara Susan Jessica Sarah Karen Hans Peter Klaus Jürgen Uwe Sabine Petra "
    "Andrea Monika Ursula Lukas Leon Finn Jonas Paul Emma Mia Hannah Lea Sophie Jan Pieter Daan "
    "Sem Bram Anne Sanne Lotte Fleur Jean Pierre Michel Philippe Alain Marie Nathalie Isabelle "
    "Sylvie Camille José Antonio Manuel Francisco Carmen Lucía Marta Giuseppe Giovanni Marco "
    "Francesca Chiara Giulia Lars Erik Anders Ingrid Astrid Piotr Krzysztof Anna Katarzyna Olga "
    "Mehmet Ahmet Ayşe Fatma Ali Omar Yusuf Aisha Wei Li Ming Hiroshi Yuki Sanjay Priya Rahul "
    "George Edward Oliver Harry Jack Charlotte Amelia Olivia Isla Grace Felix Maximilian Moritz "
    "Tobias Florian Katharina Julia Laura Lena Sven Niels Ruben Thijs Sophie Inès Léa Chloé Hugo "
    "Louis Gabriel Raphaël Pablo Diego Javier Sofía Valentina Alessandro Lorenzo Matteo Elena "
    "Björn Henrik Magnus Freya Maja Tomasz Jakub Zofia Agnieszka Emre Burak Elif Zeynep Arjun "
    "Anika Kenji Haruto Sakura Chen Jun Mei Noah Liam Ethan Ava Chloe Ella Zoe"
)


SURNAME_HEADS = _words(
    "Smith John Will Brown Tay Ander Thom Jack Whit Har Mart Thomp Rob Wal Wright Müll Schmi "
    "Schnei Fisch Web Mey Wag Beck Schul Hoff Kö Rich Klein Wolf Schrö Neu Schwarz Zimmer Braun "
    "Krü Hof Hart Lang Wer Jans De Vries Van Dijk Bak Viss Smit Mey Mul Bos Vos Peet Hend Dub Dur "
    "Lef Mor Lau Sim Mich Garc Rodr Gonz Fern Lop Mart Sanch Per Ross Russ Ferr Esp Bian Roma Col "
    "Ric Nowa Kowal Wiśn Wójc Kowalcz Kamin Lew Zieli Szymań Yıl Kaya Demir Şah Çel Nils Johans "
    "Karls Ander Lind Berg Ström Holm Nord Sand Öst"
)


SURNAME_MIDDLES = ("", "", "", "", "en", "er", "in", "ow", "ak", "el", "an", "is", "or", "ut", "ic",
                   "ar", "os", "im", "ol", "ur", "eb", "ad", "ist", "end", "orn")  # fmt: skip


SURNAME_TAILS = _words(
    "son sen er mann ner ski ska ez es ini elli ard ot ow ak ik dorf berg feld stein ström lund "
    "gren a i o e ley ton ford wood field ington ers man s"
)


COMPANY_A = _words(
    "Nord Süd Alpen Blue Red Green Silver Golden Bright Rapid Smart Prime Nova Terra Aqua Sky "
    "Cloud Data Net Web Pixel Byte Code Digital Cyber Quantum Solar Urban Metro Euro Atlas Orion "
    "Vega Polar Delta Omega Alpha Sigma Apex Summit Harbor River Lake Forest Stone Iron Oak Pine "
    "Maple Cedar Falcon Eagle Lion Fox Wolf Bear"
)


COMPANY_B = _words(
    "Hosting Media Systems Solutions Consulting Design Labs Works Studio Services Networks Tech "
    "Software Logistics Trading Marketing Commerce Ventures Partners Group Digital Data Online "
    "Web Cloud IT Security Energy Health Foods Travel Games Apps Print Audio Vision Bau Handel "
    "Immobilien"
)


COMPANY_C = _words(
    "Berlin Hamburg München Köln Wien Zürich Amsterdam Rotterdam Utrecht Paris Lyon Madrid "
    "Barcelona Milano Roma Warszawa Stockholm Oslo London Leeds Dublin Praha Brno Graz Basel Bern "
    "Lille Gent Antwerpen International Europe Nord West Ost Süd Plus Pro One Two Max"
)


LEGAL_FORMS = _words(
    "GmbH|Ltd|B.V.|SARL|S.L.|Oy|AB|Inc.|LLC|AG|GmbH & Co. KG|S.r.l.|UG|N.V.|ApS", sep="|"
)


PRICE_TIERS = (
    399, 499, 750, 999, 1200, 1499, 1999, 2490, 2999, 3900, 4999, 5900, 7900, 9900, 12900,
    19900, 24900, 49900,
)  # fmt: skip


SUPPLIERS = _words(
    "Hetzner Online GmbH|OVH SAS|Amazon Web Services EMEA|DigitalOcean LLC|Microsoft Ireland|Telekom Deutschland GmbH|Vodafone|Google Cloud EMEA|cPanel LLC|WHMCS Limited|Stadtwerke|Finanzamt|Techniker Krankenkasse|Allianz Versicherung|Miete GmbH|Staples",
    sep="|",
)


NON_CUSTOMERS = _words(
    "FINANZAMT MUENCHEN|HMRC|Deutsche Bank AG|Own account transfer|Savings account|ALLIANZ VERSICHERUNGS AG|AMAZON PAYMENTS EUROPE|PAYPAL EUROPE|Bundesagentur fuer Arbeit|Interest|Sparkasse|KfW Bankengruppe|Verizon refund|Rental deposit|",
    sep="|",
)
