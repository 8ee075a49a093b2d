"""Local passwords: Argon2id hashes (argon2-cffi defaults), checked lengths, and a decoy hash
that makes a sign-in with an unknown email cost what a wrong password costs."""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from recon.errors import RuleViolationError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    """The Argon2id PHC string of `password`, after checking it is long enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RuleViolationError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise RuleViolationError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    if "\n" in password or "\r" in password:
        raise RuleViolationError("a password may not contain a line break")
    return _hasher.hash(password)


def password_matches(stored: str, password: str) -> bool:
    """Whether `password` is the one `stored` (an Argon2 PHC string) was made from."""
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def decoy_hash() -> str:
    """A hash no one knows the password of: verified for unknown users, so that a wrong email
    costs the same time as a wrong password and timing does not reveal which emails exist."""
    return _hasher.hash(secrets.token_urlsafe(24))


def needs_rehash(stored: str) -> bool:
    """Whether `stored` was made with other parameters than the library's current defaults."""
    return _hasher.check_needs_rehash(stored)
