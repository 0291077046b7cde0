"""The official Twilio Python SDK against a running otpd, with nothing but
its base URL changed: create, check wrong (pending), check right (approved),
re-check (20404), fetch, cancel, the caps (60202, 60203), and the call and
WhatsApp channels, each attempt naming its own.

Run by .ci/run through run.sh, which starts otpd with the Twilio Verify API
on and two test numbers (fixed codes, never texted). Standalone:
OTPD_URL=http://127.0.0.1:8080 python3 sdk_check.py, with the same settings.
"""

import datetime
import os
import sys

for name in ("TWILIO_REGION", "TWILIO_EDGE"):
    # Either would rewrite the host (127.0.0.1 -> 127.us1.0.1).
    os.environ.pop(name, None)

from twilio.base.exceptions import TwilioRestException  # noqa: E402
from twilio.rest import Client  # noqa: E402

BASE = os.environ.get("OTPD_URL", "http://127.0.0.1:18766")
ACCOUNT = "AC" + "a" * 32
TOKEN = "sdk-check-token-0123456789"
SERVICE = "VA" + "b" * 32
PHONE, CODE = "+14155550106", "424242"
OTHER = "+14155550107"
CAPPED = "+14155550108"
CALLED = "+14155550109"  # not a test number: the console places the call
KEY_SID, KEY_SECRET = "SK" + "c" * 32, "sdk-api-key-secret-0123456789"  # not a test number: test numbers skip the send cap


def refused(call, status, code):
    try:
        call()
    except TwilioRestException as e:
        assert (e.status, e.code) == (status, code), (e.status, e.code, e.msg)
        print(f"  refused as expected: HTTP {e.status}, code {e.code}: {e.msg}")
        return
    raise AssertionError(f"expected HTTP {status} / {code}")


def main():
    client = Client(ACCOUNT, TOKEN)
    client.verify.base_url = BASE  # the one change an app makes
    service = client.verify.v2.services(SERVICE)

    v = service.verifications.create(to=PHONE, channel="sms")
    assert v.status == "pending" and v.sid.startswith("VE") and len(v.sid) == 34, v
    assert isinstance(v.date_created, datetime.datetime), v.date_created
    assert len(v.send_code_attempts) == 1
    print(f"created {v.sid} ({v.status})")

    wrong = service.verification_checks.create(to=PHONE, code="000000")
    assert (wrong.status, wrong.valid) == ("pending", False), wrong
    print(f"wrong code: {wrong.status}, valid={wrong.valid}")

    again = service.verifications.create(to=PHONE, channel="sms")
    assert again.sid == v.sid and len(again.send_code_attempts) == 2, again
    print(f"resent: same sid, {len(again.send_code_attempts)} send attempts")

    right = service.verification_checks.create(verification_sid=v.sid, code=CODE)
    assert (right.status, right.valid, right.sid) == ("approved", True, v.sid), right
    print(f"right code: {right.status}, valid={right.valid}")

    refused(lambda: service.verification_checks.create(to=PHONE, code=CODE), 404, 20404)

    v = service.verifications.create(to=PHONE, channel="sms")
    fetched = service.verifications(v.sid).fetch()
    assert (fetched.sid, fetched.status, fetched.to) == (v.sid, "pending", PHONE), fetched
    print(f"fetched {fetched.sid} ({fetched.status})")
    cancelled = service.verifications(v.sid).update(status="canceled")
    assert cancelled.status == "canceled", cancelled
    print(f"cancelled {cancelled.sid}")
    refused(lambda: service.verifications(v.sid).fetch(), 404, 20404)

    # The caps: five wrong checks, then 60202; three sends per window, then 60203.
    service.verifications.create(to=OTHER, channel="sms")
    for _ in range(5):
        assert service.verification_checks.create(to=OTHER, code="000000").status == "pending"
    refused(lambda: service.verification_checks.create(to=OTHER, code=CODE), 429, 60202)
    for _ in range(3):
        service.verifications.create(to=CAPPED, channel="sms")
    refused(lambda: service.verifications.create(to=CAPPED, channel="sms"), 429, 60203)

    # A call, then a WhatsApp message, in one verification (the console
    # sends both where otpd runs with its defaults).
    called = service.verifications.create(to=CALLED, channel="call")
    assert (called.channel, called.status) == ("call", "pending"), called
    assert [a["channel"] for a in called.send_code_attempts] == ["call"], called.send_code_attempts
    texted = service.verifications.create(to=CALLED, channel="whatsapp")
    assert (texted.sid, texted.channel) == (called.sid, "whatsapp"), texted
    channels = [a["channel"] for a in texted.send_code_attempts]
    assert channels == ["call", "whatsapp"], channels
    print(f"called, then WhatsApp: one verification, attempts {channels}")
    refused(lambda: service.verifications.create(to=CALLED, channel="email"), 400, 60200)

    # Built as apps often build it: an API key, its secret and the account.
    keyed = Client(KEY_SID, KEY_SECRET, ACCOUNT)
    keyed.verify.base_url = BASE
    by_key = keyed.verify.v2.services(SERVICE)
    v = by_key.verifications.create(to=PHONE, channel="sms")
    assert v.status == "pending", v
    right = by_key.verification_checks.create(verification_sid=v.sid, code=CODE)
    assert right.status == "approved", right
    print("signed in with an API key: created and approved")
    wrong_key = Client(KEY_SID, "not-the-secret-0123456789", ACCOUNT)
    wrong_key.verify.base_url = BASE
    refused(lambda: wrong_key.verify.v2.services(SERVICE).verifications.create(to=PHONE, channel="sms"), 401, 20003)

    bad = Client(ACCOUNT, "not-the-token-0123456789")
    bad.verify.base_url = BASE
    refused(lambda: bad.verify.v2.services(SERVICE).verifications.create(to=PHONE, channel="sms"), 401, 20003)
    print("twilio-python works against otpd")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
