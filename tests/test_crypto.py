"""bot/crypto.py: pseudonymous look-up keys and encryption at rest."""

from __future__ import annotations

import base64
import os
import re

import pytest

from bot.crypto import NONCE_BYTES, DecryptionError, Vault
from bot.settings import Keys

LOOKUP_KEY = bytes(range(32))
K1 = bytes(range(32, 64))
K2 = bytes(range(64, 96))


def make_keys(data_keys: dict[str, bytes] | None = None, current: str = "k1", lookup: bytes = LOOKUP_KEY) -> Keys:
    return Keys(
        lookup_key=lookup,
        data_keys=data_keys if data_keys is not None else {"k1": K1},
        current_key_id=current,
        nlg_token="t" * 32,
    )


@pytest.fixture
def vault() -> Vault:
    return Vault(make_keys())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bonjour",
        "J'ai besoin d'aide, où dormir ce soir ?",
        "مرحبا، أحتاج مساعدة",
        "你好，我需要帮助",
        "emoji 😊👍🏽 and \u0000 nul, \n newline",
        "x" * 10_000,
    ],
)
def test_seal_then_open_gives_the_text_back(vault: Vault, text: str) -> None:
    ciphertext, key_id = vault.seal(text, "body")
    assert key_id == "k1"
    assert isinstance(ciphertext, bytes)
    assert vault.open(ciphertext, key_id, "body") == text


def test_ciphertext_does_not_contain_the_plaintext(vault: Vault) -> None:
    text = "Mon adresse est 12 rue de la Paix, je m'appelle Amina"
    ciphertext, _ = vault.seal(text, "body")
    plain = text.encode("utf-8")
    assert plain not in ciphertext
    for word in text.split():
        if len(word) >= 4:
            assert word.encode("utf-8") not in ciphertext
    # nonce + plaintext + 16-byte tag
    assert len(ciphertext) == NONCE_BYTES + len(plain) + 16


def test_two_seals_of_the_same_text_differ(vault: Vault) -> None:
    first, _ = vault.seal("même texte", "body")
    second, _ = vault.seal("même texte", "body")
    assert first != second
    assert first[:NONCE_BYTES] != second[:NONCE_BYTES]
    assert vault.open(first, "k1", "body") == vault.open(second, "k1", "body") == "même texte"


def test_wrong_purpose_does_not_open(vault: Vault) -> None:
    ciphertext, key_id = vault.seal("+33612345678", "address")
    with pytest.raises(DecryptionError):
        vault.open(ciphertext, key_id, "body")


@pytest.mark.parametrize("position", [0, NONCE_BYTES - 1, NONCE_BYTES, NONCE_BYTES + 3, -1])
def test_tampered_byte_does_not_open(vault: Vault, position: int) -> None:
    ciphertext, key_id = vault.seal("texte secret", "body")
    tampered = bytearray(ciphertext)
    tampered[position] ^= 0x01
    with pytest.raises(DecryptionError):
        vault.open(bytes(tampered), key_id, "body")


def test_truncated_ciphertext_does_not_open(vault: Vault) -> None:
    ciphertext, key_id = vault.seal("texte secret", "body")
    for length in (len(ciphertext) - 1, NONCE_BYTES + 4, NONCE_BYTES):
        with pytest.raises(DecryptionError):
            vault.open(ciphertext[:length], key_id, "body")


@pytest.mark.parametrize("ciphertext", [b"", b"abc", b"1234567"])
def test_ciphertext_shorter_than_a_nonce_is_a_decryption_error(vault: Vault, ciphertext: bytes) -> None:
    """A corrupted (e.g. emptied or truncated) stored value is tampered data: the documented
    error is DecryptionError, whatever its length."""
    with pytest.raises(DecryptionError):
        vault.open(ciphertext, "k1", "body")


def test_unknown_key_id_does_not_open(vault: Vault) -> None:
    ciphertext, _ = vault.seal("texte", "body")
    with pytest.raises(DecryptionError):
        vault.open(ciphertext, "k9", "body")


def test_other_key_does_not_open() -> None:
    ciphertext, key_id = Vault(make_keys({"k1": K1})).seal("texte", "body")
    with pytest.raises(DecryptionError):
        Vault(make_keys({"k1": K2})).open(ciphertext, key_id, "body")


def test_current_key_must_exist() -> None:
    with pytest.raises(ValueError):
        Vault(make_keys({"k1": K1}, current="k2"))


def test_key_rotation_keeps_old_data_readable_and_seals_with_the_new_key() -> None:
    old = Vault(make_keys({"k1": K1}, current="k1"))
    old_ciphertext, old_key_id = old.seal("ancien message", "body")
    assert old_key_id == "k1"

    rotated = Vault(make_keys({"k2": K2, "k1": K1}, current="k2"))
    assert rotated.current_key_id == "k2"
    assert rotated.open(old_ciphertext, old_key_id, "body") == "ancien message"

    new_ciphertext, new_key_id = rotated.seal("nouveau message", "body")
    assert new_key_id == "k2"
    assert rotated.open(new_ciphertext, new_key_id, "body") == "nouveau message"
    # The old vault knows nothing of k2.
    with pytest.raises(DecryptionError):
        old.open(new_ciphertext, new_key_id, "body")
    # Data sealed under k2 is not openable as if it were k1.
    with pytest.raises(DecryptionError):
        rotated.open(new_ciphertext, "k1", "body")


def test_lookup_is_stable_and_64_hex_chars(vault: Vault) -> None:
    first = vault.lookup("sms", "+33612345678")
    assert first == vault.lookup("sms", "+33612345678")
    assert first == Vault(make_keys()).lookup("sms", "+33612345678")
    assert re.fullmatch(r"[0-9a-f]{64}", first)


def test_lookup_differs_per_channel_and_per_address(vault: Vault) -> None:
    values = {
        vault.lookup("sms", "+33612345678"),
        vault.lookup("telegram", "+33612345678"),
        vault.lookup("sms", "+33612345679"),
        vault.lookup("webchat", "+33612345678"),
    }
    assert len(values) == 4


def test_lookup_does_not_mix_channel_and_address(vault: Vault) -> None:
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert vault.lookup("ab", "c") != vault.lookup("a", "bc")


def test_lookup_differs_per_lookup_key() -> None:
    one = Vault(make_keys(lookup=LOOKUP_KEY))
    two = Vault(make_keys(lookup=bytes(32)))
    assert one.lookup("sms", "+33612345678") != two.lookup("sms", "+33612345678")


def test_lookup_does_not_contain_the_address(vault: Vault) -> None:
    address = "123456789"
    value = vault.lookup("sms", address)
    assert address not in value
    assert "sms" not in value


def test_repr_contains_no_key_material() -> None:
    keys = make_keys({"k2": K2, "k1": K1}, current="k2")
    vault = Vault(keys)
    text = repr(vault) + str(vault)
    assert "k2" in repr(vault)
    for secret in (LOOKUP_KEY, K1, K2):
        for form in (
            repr(secret),
            secret.hex(),
            base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode(),
        ):
            assert form not in text


def test_random_keys_roundtrip() -> None:
    vault = Vault(make_keys({"a1": os.urandom(32)}, current="a1", lookup=os.urandom(32)))
    ciphertext, key_id = vault.seal("texte", "p")
    assert key_id == "a1"
    assert vault.open(ciphertext, key_id, "p") == "texte"
