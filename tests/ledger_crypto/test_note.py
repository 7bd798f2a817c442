"""C2SP signed notes / tlog checkpoints: round trips, interoperability and tampering."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.crypto import merkle
from ledger.crypto.keyring import KeyRing
from ledger.crypto.note import (
    InvalidNoteSignatureError,
    MalformedNoteError,
    NoteVerifier,
    UnknownNoteKeyError,
    WrongOriginError,
    parse_checkpoint,
    parse_note,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    verify_note,
)
from ledger.crypto.signing import KmsSigner, LocalSigner

from .conftest import T0

ORIGIN = "ledger.qcos.example/log"
ROOT = merkle.root([merkle.leaf_hash(b"%d" % i) for i in range(1000)])

# Examples quoted from the specifications (C2SP/C2SP signed-note.md and tlog-checkpoint.md).
SPEC_NOTE = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n"
    "— quasimodo.example/salvatore "
    "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "— example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


def test_parses_the_specification_examples() -> None:
    note = parse_note(SPEC_NOTE)
    assert note.text.endswith("ed è subito sera.\n") and "\n\ned" in note.text  # text may hold blank lines
    (sig,) = note.signatures
    assert sig.name == "quasimodo.example/salvatore" and len(sig.key_hash) == 4 and len(sig.signature) == 64
    checkpoint = parse_checkpoint(parse_note(SPEC_CHECKPOINT).text)
    assert (checkpoint.origin, checkpoint.size, len(checkpoint.root)) == ("example.com/behind-the-sofa", 20852163, 32)
    with pytest.raises(UnknownNoteKeyError):  # an Ed25519 key we do not hold is simply unknown
        verify_checkpoint(SPEC_CHECKPOINT, KeyRing())


def test_round_trip_with_keyring_and_verifiers(log_key, keyring: KeyRing) -> None:
    text = sign_checkpoint(ORIGIN, 1000, ROOT, log_key)
    body, sig_line = text.split("\n\n")
    assert body == f"{ORIGIN}\n1000\n{base64.b64encode(ROOT).decode()}"
    assert sig_line.startswith(f"— {ORIGIN} ") and sig_line.endswith("\n")
    checkpoint = verify_checkpoint(text, keyring, origin=ORIGIN)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (ORIGIN, 1000, ROOT)
    assert checkpoint.verified_key_ids == (log_key.key_id,)
    assert verify_checkpoint(text, [NoteVerifier(ORIGIN, log_key.public_key_der)]).size == 1000


def test_signature_is_interoperable_type_0x02(log_key) -> None:
    """What transparency-dev/formats and Rekor check: key ID = SHA-256(SPKI)[:4] and an
    ECDSA signature over SHA-256 of the note text."""
    text = sign_checkpoint(ORIGIN, 5, ROOT, log_key, extensions=["extension line"])
    note = parse_note(text)
    (sig,) = note.signatures
    assert sig.key_hash == hashlib.sha256(log_key.public_key_der).digest()[:4]
    public = serialization.load_der_public_key(log_key.public_key_der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(sig.signature, note.text.encode(), ec.ECDSA(hashes.SHA256()))  # raises if invalid
    verifier = NoteVerifier(ORIGIN, log_key.public_key_der)
    assert verifier.vkey.split("+")[1] == sig.key_hash.hex()
    assert NoteVerifier.from_vkey(verifier.vkey).key_hash == verifier.key_hash
    assert verify_checkpoint(text, [verifier]).extensions == ("extension line",)


def test_kms_signed_checkpoint() -> None:
    hsm_key = LocalSigner.generate()
    arn = "arn:aws:kms:eu-west-1:111122223333:key/log"
    body = f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode()}\n"
    digest = bytes(16) + hashlib.sha256(body.encode()).digest()
    client = boto3.client("kms", region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_public_key",
            {"KeyId": arn, "PublicKey": hsm_key.public_key_der, "KeySpec": "ECC_NIST_P384",
             "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": ["ECDSA_SHA_384"]},
            {"KeyId": arn},
        )
        stubber.add_response(
            "sign",
            {"KeyId": arn, "Signature": hsm_key.sign_digest(digest), "SigningAlgorithm": "ECDSA_SHA_384"},
            {"KeyId": arn, "Message": digest, "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_384"},
        )
        text = sign_checkpoint(ORIGIN, 7, ROOT, KmsSigner(client, arn))
    assert verify_checkpoint(text, [NoteVerifier(ORIGIN, hsm_key.public_key_der)]).size == 7


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _other_first_char(line: str) -> str:
    return ("A" if line[0] != "A" else "B") + line[1:]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("\n1000\n", "\n1001\n"),
        lambda t: t.replace(ORIGIN + "\n", "ledger.qcos.example/loh\n", 1),
        lambda t: "\n".join([*_lines(t)[:2], _other_first_char(_lines(t)[2]), *_lines(t)[3:]]),
        lambda t: t.replace("\n\n", "\nextra\n\n"),
    ],
    ids=["size", "origin", "root", "added-extension"],
)
def test_changed_text_fails(log_key, keyring: KeyRing, tamper) -> None:
    text = sign_checkpoint(ORIGIN, 1000, ROOT, log_key)
    tampered = tamper(text)
    assert tampered != text
    with pytest.raises((InvalidNoteSignatureError, UnknownNoteKeyError)):
        verify_checkpoint(tampered, keyring)


def test_every_signature_byte_matters(log_key, keyring: KeyRing) -> None:
    text = sign_checkpoint(ORIGIN, 1000, ROOT, log_key)
    body, line = text.split("\n\n")
    prefix, encoded = line.rstrip("\n").rsplit(" ", 1)
    raw = base64.b64decode(encoded)
    for position in range(len(raw)):
        flipped = raw[:position] + bytes([raw[position] ^ 0x80]) + raw[position + 1 :]
        bad = f"{body}\n\n{prefix} {base64.b64encode(flipped).decode()}\n"
        expected = UnknownNoteKeyError if position < 4 else (InvalidNoteSignatureError, MalformedNoteError)
        with pytest.raises(expected):
            verify_checkpoint(bad, keyring)


@pytest.mark.parametrize(
    "bad",
    [
        "ledger.qcos.example/log\n1000\nAAAA\n\n— ledger.qcos.example/log AAAAAAA=\n",  # short root
        "ledger.qcos.example/log\n01000\n{root}\n\n— x AAAAAAAA\n",  # leading zero
        "ledger.qcos.example/log\n+1000\n{root}\n\n— x AAAAAAAA\n",
        "ledger.qcos.example/log\n١٠٠٠\n{root}\n\n— x AAAAAAAA\n",  # non-ASCII digits
        "ledger.qcos.example/log\n1000\n\n— x AAAAAAAA\n",  # two lines only
        "ledger.qcos.example/log\n1000\n{root}\n— x AAAAAAAA\n",  # no blank line
        "ledger.qcos.example/log\n1000\n{root}\n\n",  # no signatures
        "ledger.qcos.example/log\n1000\n{root}\n\n— x AAAAAAAA",  # no final newline
        "ledger.qcos.example/log\n1000\n{root}\n\n- x AAAAAAAA\n",  # hyphen, not em dash
        "ledger.qcos.example/log\n1000\n{root}\n\n— x+y AAAAAAAA\n",  # '+' in key name
        "ledger.qcos.example/log\n1000\n{root}\n\n— x AAAA\n",  # fewer than 5 bytes
        "ledger.qcos.example/log\n1000\n{root}\n\n— x AAAAAAA\n",  # bad base64
        "ledger.qcos.example/log\r\n1000\n{root}\n\n— x AAAAAAAA\n",  # control character
    ],
)
def test_malformed_checkpoints(bad: str, keyring: KeyRing) -> None:
    with pytest.raises(MalformedNoteError):
        verify_checkpoint(bad.replace("{root}", base64.b64encode(ROOT).decode()), keyring)


def test_unknown_signatures_are_ignored_but_bad_known_ones_reject(log_key, keyring: KeyRing) -> None:
    text = sign_checkpoint(ORIGIN, 1000, ROOT, log_key)
    body = parse_note(text).text
    witness = sign_note(body, LocalSigner.generate(), "witness.example/w1")
    cosigned = text + witness.split("\n\n")[1]
    assert verify_checkpoint(cosigned, keyring).size == 1000
    impostor = sign_note(body, LocalSigner.generate(), ORIGIN)  # same name, other key ID
    assert verify_checkpoint(text + impostor.split("\n\n")[1], keyring).size == 1000
    other_text = sign_checkpoint(ORIGIN, 1001, ROOT, log_key)
    stale = other_text.split("\n\n")[1]  # right key, signature over another text
    with pytest.raises(InvalidNoteSignatureError):
        verify_checkpoint(witness.split("\n\n")[0] + "\n\n" + stale, keyring)


def test_trust_decisions(log_key, keyring: KeyRing) -> None:
    text = sign_checkpoint(ORIGIN, 1000, ROOT, log_key)
    with pytest.raises(WrongOriginError):
        verify_checkpoint(text, keyring, origin="other.example/log")
    with pytest.raises(UnknownNoteKeyError):
        verify_checkpoint(text, [NoteVerifier("other.example/log", log_key.public_key_der)])
    with pytest.raises(UnknownNoteKeyError):
        verify_checkpoint(text, KeyRing())
    revoked = keyring.to_dict()
    for key in revoked["keys"]:
        key["status"] = "revoked"
    with pytest.raises(UnknownNoteKeyError):
        verify_checkpoint(text, KeyRing.from_dict(revoked))
    worker_only = KeyRing()
    worker_only.add_public_key(log_key.public_key_der, T0, T0 + timedelta(days=1), "retired", roles=["worker"])
    with pytest.raises(UnknownNoteKeyError):
        verify_checkpoint(text, worker_only)  # key not allowed the "log" role


def test_verify_note_returns_signers(log_key) -> None:
    note_text = sign_note("hello\n", log_key, "example.com/k")
    note, signers = verify_note(note_text, [NoteVerifier("example.com/k", log_key.public_key_der)])
    assert note.text == "hello\n" and [s.key_id for s in signers] == [log_key.key_id]
    with pytest.raises(MalformedNoteError):
        sign_note("no newline", log_key, "example.com/k")
