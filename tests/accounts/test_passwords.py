"""The password policy (NIST SP 800-63B rev. 4) and hashing: unit tests, no database."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest

from steelyard.accounts import passwords, security
from steelyard.errors import ValidationError

EMAIL = "maria.lopez@example.com"


def refused(password: str, *, min_length: int = 15, email: str = EMAIL) -> str:
    with pytest.raises(ValidationError) as info:
        passwords.check_password(password, email=email, min_length=min_length)
    assert info.value.field == "password"
    return info.value.message


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password", "at least 15"),
        ("12345678", "at least 15"),
        (" " * 8, "at least 15"),
        (" " * 20, "only spaces"),
        ("a" * 20, "one character repeated"),
        ("passwordpassword", "sequence repeated"),
        ("abcabcabcabcabcabc", "3-character sequence repeated"),
        ("123456789987654321", "common"),  # on the shipped breached list
        ("1Q2W3E4R5T6Y7U8I9O0P", "common"),  # compared case-insensitively
        ("1234567890 qwerty uiop", "common"),  # and with spaces removed
        ("Friend of Emily", "common"),
        ("my maria.lopez passphrase", "email"),
        ("Steelyard is my passphrase", "steelyard"),
        ("tab\there and there too", "control"),
        ("long passphrase " * 70, "at most 1024"),
    ],
)
def test_refused_passwords_say_why(password: str, why: str) -> None:
    assert why.lower() in refused(password).lower()


def test_no_composition_rules_and_any_printable_unicode() -> None:
    for ok in (
        "correct horse battery",
        "all lowercase letters here",
        "пароль без цифр и знаков",
        "emoji 🦊🦊 and spaces ok",
        ("long passphrase " * 70)[:1023] + "!",
    ):
        assert passwords.check_password(ok, email=EMAIL) == ok


def test_length_counts_characters_after_nfkc() -> None:
    # U+FB01 (the "fi" ligature) is one code point that NFKC turns into two.
    assert passwords.check_password("ﬁ" * 4 + "nish line now", email=EMAIL).startswith("fifi")
    assert "at least 15" in refused("\u212b" * 14)  # Angstrom sign: still one each
    # the minimum is configurable, but never below NIST's floor of 8
    assert passwords.check_password("mauve lagoon", email=EMAIL, min_length=8) == "mauve lagoon"
    assert "at least 8" in refused("tangelo", min_length=4)


def test_short_email_names_are_not_matched() -> None:
    assert passwords.check_password("a long enough passphrase", email="a@example.com")


def test_the_shipped_list_is_there_and_small() -> None:
    common = passwords.common_passwords()
    assert len(common) > 19_000
    assert {"password", "123456", "iloveyou"} <= common


def test_argon2id_hash_and_verify_normalised() -> None:
    stored = security.hash_password("ﬁne passphrase here")
    assert stored.startswith("$argon2id$")
    assert security.verify_password("fine passphrase here", stored)  # NFKC on both sides
    assert not security.verify_password("fine passphrase herE", stored)
    assert not security.needs_rehash(stored)


def test_nothing_to_check_is_never_a_match() -> None:
    for stored in (None, "", "garbage", "$argon2id$v=19$broken"):
        assert not security.verify_password("anything at all", stored)


def _legacy_scrypt(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_legacy_scrypt_hashes_verify_and_need_a_rehash() -> None:
    stored = _legacy_scrypt("old but gold password")
    assert security.verify_password("old but gold password", stored)
    assert not security.verify_password("old but gold passworD", stored)
    assert security.needs_rehash(stored)


def test_other_argon2_parameters_need_a_rehash() -> None:
    from argon2 import PasswordHasher

    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("x" * 16)
    assert security.verify_password("x" * 16, weaker)
    assert security.needs_rehash(weaker)
