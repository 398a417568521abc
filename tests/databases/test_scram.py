"""The verifier given to PostgreSQL answers RFC 7677's worked SCRAM-SHA-256 exchange."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hosting.databases.scram import verifier

# RFC 7677, section 3: user "user", password "pencil".
SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="
NONCE = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
AUTH_MESSAGE = (
    f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={NONCE},s={SALT},i=4096,c=biws,r={NONCE}"
).encode()
CLIENT_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def _parts(password: str) -> tuple[str, bytes, bytes]:
    text = verifier(password, salt=base64.b64decode(SALT))
    scheme, head, keys = text.split("$")
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    return f"{scheme}${head}", stored, server


def test_the_server_key_signs_as_in_the_rfc() -> None:
    head, _, server_key = _parts("pencil")
    assert head == f"SCRAM-SHA-256$4096:{SALT}"
    signature = hmac.new(server_key, AUTH_MESSAGE, hashlib.sha256).digest()
    assert base64.b64encode(signature).decode() == SERVER_SIGNATURE


def test_the_stored_key_accepts_the_rfc_client_proof_and_no_other_password() -> None:
    def accepts(password: str) -> bool:
        _, stored_key, _ = _parts(password)
        signature = hmac.new(stored_key, AUTH_MESSAGE, hashlib.sha256).digest()
        proof = base64.b64decode(CLIENT_PROOF)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        return hashlib.sha256(client_key).digest() == stored_key

    assert accepts("pencil")
    assert not accepts("pencil ")


def test_each_verifier_has_its_own_salt() -> None:
    assert verifier("same") != verifier("same")
