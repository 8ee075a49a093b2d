"""Payer names meet client and company names whatever the spelling."""

from __future__ import annotations

import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from recon.matching.names import FULL, INITIAL, name_keys, normalise_names


def keys(name: str) -> dict[int, int]:
    found = name_keys(pa.array([name]))
    return dict(zip(found.key.tolist(), found.level.tolist(), strict=True))


def shared(a: str, b: str) -> set[int]:
    """Levels of the keys two names share."""
    ka, kb = keys(a), keys(b)
    return {ka[k] for k in set(ka) & set(kb)}


@pytest.mark.parametrize(
    ("payer", "client"),
    [
        ("SMITH JOHN", "John Smith"),
        ("Smith, John", "John Smith"),
        ("Mr John Smith", "John Smith"),
        ("HERR HANS MUELLER", "Hans Müller"),
        ("JOSE GARCIA", "José García"),
        ("ACME HOSTING", "Acme Hosting GmbH"),
        ("ACME HOSTING G.M.B.H.", "Acme Hosting GmbH"),
        ("Acme Hosting B.V.", "Acme Hosting Ltd"),
        ("SMITH JOHN A", "John Smith"),
    ],
)
def test_same_name_full(payer: str, client: str) -> None:
    assert FULL in shared(payer, client)


@pytest.mark.parametrize(
    ("payer", "client"),
    [("J. Smith", "John Smith"), ("SMITH J", "John Smith"), ("DR. J. SMITH", "Jane Smith")],
)
def test_initials_meet_at_initial_level(payer: str, client: str) -> None:
    assert shared(payer, client) == {INITIAL}


@pytest.mark.parametrize(
    ("payer", "client"),
    [("John Smith", "Jane Smith"), ("John Smith", "John Smithson"), ("Acme", "Acme Hosting")],
)
def test_different_names_do_not_meet(payer: str, client: str) -> None:
    assert FULL not in shared(payer, client)


def test_normalise_names() -> None:
    assert normalise_names(pa.array(["Dr. Jörg Weiß", "B.V. Acme", ""])).to_pylist() == [
        "jorg weiss",
        "acme",
        "",
    ]
    # umlauts written out, kept or dropped by the bank all come to the same words
    spellings = normalise_names(pa.array(["Jörg Öberg", "JOERG OEBERG", "Jorg Oberg"]))
    assert len(set(spellings.to_pylist())) == 1


def test_empty_names_give_no_key() -> None:
    assert keys("") == {} and keys("GmbH") == {} and keys("...") == {}
