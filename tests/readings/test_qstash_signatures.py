"""The job consumer accepts only requests QStash signed: Upstash-Signature checked with the
qstash package's Receiver (current and next key, URL claim, body hash, expiry). The tokens here
are made by the QStash stand-in's signer, written independently of the receiver."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from pydantic import SecretStr

from devstack.qstash_standin.signing import sign_delivery
from shared.errors import InvalidQStashSignature
from shared.qstash_client import SignatureVerifier

CURRENT = "sig_current_key_for_the_tests_000"
NEXT = "sig_next_key_for_the_tests_000000"
URL = "https://consumer.example.test/"
BODY = b'{"max_jobs":5}'


@pytest.fixture
def verifier() -> SignatureVerifier:
    return SignatureVerifier(SecretStr(CURRENT), SecretStr(NEXT))


def test_a_request_signed_with_the_current_key_passes(verifier):
    verifier.verify(sign_delivery(CURRENT, url=URL, body=BODY), BODY, URL)


def test_a_request_signed_with_the_next_key_passes_during_a_rotation(verifier):
    verifier.verify(sign_delivery(NEXT, url=URL, body=BODY), BODY, URL)


def test_a_request_signed_with_another_key_is_refused(verifier):
    with pytest.raises(InvalidQStashSignature) as caught:
        verifier.verify(sign_delivery("sig_somebody_elses_key_000000000", url=URL, body=BODY),
                        BODY, URL)
    assert caught.value.status == 401 and caught.value.code == "invalid_signature"


def test_an_expired_signature_is_refused(verifier):
    old = int(time.time()) - 3600
    with pytest.raises(InvalidQStashSignature):
        verifier.verify(sign_delivery(CURRENT, url=URL, body=BODY, now=old), BODY, URL)


def test_a_signature_for_another_url_is_refused(verifier):
    signature = sign_delivery(CURRENT, url="https://elsewhere.example.test/", body=BODY)
    with pytest.raises(InvalidQStashSignature):
        verifier.verify(signature, BODY, URL)


def test_a_tampered_body_is_refused(verifier):
    signature = sign_delivery(CURRENT, url=URL, body=BODY)
    with pytest.raises(InvalidQStashSignature):
        verifier.verify(signature, b'{"max_jobs":5000}', URL)


@pytest.mark.parametrize("signature", [None, "", "not-a-jwt", "a.b.c"])
def test_a_missing_or_malformed_signature_is_refused(verifier, signature):
    with pytest.raises(InvalidQStashSignature):
        verifier.verify(signature, BODY, URL)


def test_an_unsigned_token_is_refused(verifier):
    claims = json.loads(base64.urlsafe_b64decode(
        sign_delivery(CURRENT, url=URL, body=BODY).split(".")[1] + "=="))
    unsigned = jwt.encode(claims, "", algorithm="none")
    with pytest.raises(InvalidQStashSignature):
        verifier.verify(unsigned, BODY, URL)


def test_the_handler_answers_401_before_touching_the_queue(monkeypatch):
    from functions.job_consumer import handler as module
    from shared import bootstrap
    from shared.settings import reset_settings

    class Untouchable:
        def run(self, **kwargs):
            raise AssertionError("the consumer ran for an unsigned request")

    for name, value in {"SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_ANON_KEY": "a",
                        "SUPABASE_SERVICE_ROLE_KEY": "s", "SUPABASE_JWT_SECRET": "j",
                        "QSTASH_CURRENT_SIGNING_KEY": CURRENT, "QSTASH_NEXT_SIGNING_KEY": NEXT,
                        "JOB_CONSUMER_URL": URL}.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    bootstrap.override(job_consumer=Untouchable())
    event = {"requestContext": {"http": {"method": "POST"}}, "rawPath": "/",
             "headers": {"upstash-signature": sign_delivery(NEXT, url=URL, body=b"{}")},
             "body": '{"max_jobs": 1}'}
    try:
        response = module.handler(event, None)
    finally:
        bootstrap.reset()
        monkeypatch.undo()
        reset_settings()
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "invalid_signature"
