"""Drives otpd through the Python client that openapi-python-client
generated from openapi.yaml (tests/client_gen/run.sh): a send, a wrong
code read back as a typed Problem, the right code by the verification's id.
Nothing here is written by hand against the wire: every request and every
answer goes through the generated code."""

import os
import re

from otpd_client import AuthenticatedClient
from otpd_client.api.otp import send_otp, verify_otp
from otpd_client.models import (
    Problem,
    ProblemCode,
    SendBody,
    SendRequest,
    VerificationStatus,
    VerifyBody,
    VerifyRequest,
)

client = AuthenticatedClient(base_url=os.environ["OTPD_URL"], token=os.environ["OTPD_KEY"])
phone = "+14155550123"

sent = send_otp.sync_detailed(client=client, body=SendRequest(phone=phone))
assert sent.status_code == 202, (sent.status_code, sent.content)
assert isinstance(sent.parsed, SendBody), sent.parsed
assert sent.parsed.status == VerificationStatus.PENDING, sent.parsed
verification_id = sent.parsed.verification_id

with open(os.environ["OTPD_SMS_LOG"], encoding="utf-8") as log:
    codes = re.findall(r"code is (\d{6})", log.read())
assert codes, "the console sender printed no code"
code = codes[-1]
wrong_code = f"{(int(code) + 1) % 1_000_000:06d}"

wrong = verify_otp.sync_detailed(
    client=client, body=VerifyRequest(verification_id=verification_id, code=wrong_code)
)
assert wrong.status_code == 422, (wrong.status_code, wrong.content)
assert isinstance(wrong.parsed, Problem), f"not parsed as a Problem: {wrong.parsed!r}"
assert wrong.parsed.code == ProblemCode.CODE_MISMATCH, wrong.parsed
assert wrong.parsed.attempts_remaining == 4, wrong.parsed

right = verify_otp.sync_detailed(
    client=client, body=VerifyRequest(verification_id=verification_id, code=code)
)
assert right.status_code == 200, (right.status_code, right.content)
assert isinstance(right.parsed, VerifyBody), right.parsed
assert right.parsed.status == VerificationStatus.APPROVED, right.parsed
assert right.parsed.verification_id == verification_id, right.parsed

again = verify_otp.sync_detailed(
    client=client, body=VerifyRequest(verification_id=verification_id, code=code)
)
assert isinstance(again.parsed, Problem) and again.parsed.code == ProblemCode.NOT_FOUND, again.parsed
print("client_gen: the generated Python client sent, read code_mismatch as a Problem, approved once")
