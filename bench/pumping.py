#!/usr/bin/env python3
"""A replayable SMS-pumping scenario against a real otpd (docs/performance.md).

Starts a stand-in for Twilio's Messages API (it records every message and
answers 201), and for each scenario a fresh otpd that sends through it with
the defaults a deployment with a real vendor has (the pumping breaker in
enforce mode), an API key, and 127.0.0.1 as a trusted proxy so each request
names its own client address. Real users send and approve their codes (read
from the messages the stand-in took); attackers send and never approve.

Scenarios, each on a fresh instance:
  no attack      a warm-up of real users in the US, the UK and France (90 %
                 approve), then as many again (85 %): real users refused?
  fast pumping   the warm-up, then PUMP sends to one Nigerian 1k prefix, one
                 per client address, as fast as they go; then real users
  many prefixes  the warm-up, then 40 sends to each of 50 prefixes of one
                 country, one address each
  spread         the warm-up, then sends to 5 prefixes that each stay under
                 the prefix floors (8 each): the country's floor catches them
  money cap      fast pumping with the breaker off and a money cap of 20.00 a
                 day on each country (spend.country_day_hard): the cap alone
                 bounds the bill (not the breaker's targets: a cap bounds
                 money, not SMS per prefix)

Reports SMS that reached the vendor and what they cost by otpd's own price
table (its approximate default: `otpd_country_spend_total` on its metrics
listener), real users refused, and the blocks. Targets (issue 29): at most
50 pumped SMS per attacked prefix, no real user refused.

  bench/pumping.py [--otpd target/dist/otpd] [--redis redis://127.0.0.1:6379]
                   [--warmup 300] [--pump 2000] [--out bench/pumping.md]

Needs Python 3 with aiohttp. Without --redis, otpd keeps its state in memory.
"""

import argparse
import asyncio
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import time

from aiohttp import ClientSession, ClientTimeout, web

ACCOUNT = "AC" + "0" * 32
API_KEY = "pumping-bench-" + secrets.token_hex(16)
PUMPED_PREFIX = "+2348031234"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Vendor:
    """Twilio's Messages API, as far as otpd uses it: records each message."""

    def __init__(self):
        self.messages = []  # (to, body)
        self.port = free_port()

    async def start(self):
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.take)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def take(self, request):
        form = await request.post()
        self.messages.append((form["To"], form["Body"]))
        sid = "SM" + secrets.token_hex(16)
        return web.json_response({"sid": sid, "status": "queued", "to": form["To"]}, status=201)

    def code_for(self, phone):
        for to, body in reversed(self.messages):
            if to == phone:
                return re.search(r"\b(\d{6})\b", body).group(1)
        return None


class Otpd:
    def __init__(self, binary, vendor, redis, settings):
        self.port = free_port()
        self.metrics_port = free_port()
        env = dict(os.environ)
        env.update({
            "OTPD_HTTP__LISTEN": f"127.0.0.1:{self.port}",
            "OTPD_HTTP__TRUSTED_PROXIES": "127.0.0.1",
            "OTPD_AUTH__API_KEYS": API_KEY,
            "OTPD_OTP__HASH_KEYS": secrets.token_hex(32),
            "OTPD_SMS__PROVIDER": "twilio",
            "OTPD_SMS__TWILIO__ACCOUNT_SID": ACCOUNT,
            "OTPD_SMS__TWILIO__AUTH_TOKEN": "pumping-bench-token",
            "OTPD_SMS__TWILIO__FROM": "+14155550000",
            "OTPD_SMS__TWILIO__BASE_URL": f"http://127.0.0.1:{vendor.port}",
            # The scenario sends more than the service's default hourly budget.
            "OTPD_LIMITS__SENDS_PER_HOUR": "1000000",
            "OTPD_LOG__LEVEL": "warn",
            "OTPD_METRICS__LISTEN": f"127.0.0.1:{self.metrics_port}",
        })
        env.update(settings)
        if redis:
            env["OTPD_STORE__URL"] = redis
            env["OTPD_STORE__KEY_PREFIX"] = f"pumping-bench:{secrets.token_hex(6)}:"
        self.process = subprocess.Popen(
            [binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, session):
        for _ in range(100):
            try:
                async with session.get(f"{self.url}/healthz") as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise SystemExit("otpd did not start: " + (self.process.stderr.read() if self.process.poll() else ""))

    async def spent(self, session, country):
        """What otpd's price table says the SMS to `country` cost so far."""
        async with session.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
            text = await r.text()
        match = re.search(r'^otpd_country_spend_total\{country="%s"\} (\S+)$' % country, text, re.M)
        return float(match.group(1)) if match else 0.0

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


class Tally:
    def __init__(self):
        self.sent = {}  # kind -> count of 202
        self.refused = {}  # (kind, code) -> count
        self.invalid = 0


async def send(session, otpd, phone, client, kind, tally):
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Forwarded-For": client}
    async with session.post(f"{otpd.url}/v1/otp", json={"phone": phone}, headers=headers) as r:
        body = await r.json(content_type=None)
    if r.status == 202:
        tally.sent[kind] = tally.sent.get(kind, 0) + 1
        return body["verification_id"]
    if body.get("code") == "invalid_phone":
        tally.invalid += 1
        return None
    key = (kind, body.get("code", str(r.status)))
    tally.refused[key] = tally.refused.get(key, 0) + 1
    return None


async def approve(session, otpd, vendor, phone, vid, client):
    code = vendor.code_for(phone)
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Forwarded-For": client}
    async with session.post(
        f"{otpd.url}/v1/otp/verify", json={"verification_id": vid, "code": code}, headers=headers
    ) as r:
        return r.status == 200


def real_phone(rng, country):
    if country == "US":
        return f"+1{rng.choice(['415', '650', '212', '312'])}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
    if country == "GB":
        return f"+447{rng.choice(['400', '700', '800', '900'])}{rng.randint(0, 999999):06d}"
    return f"+336{rng.randint(10000000, 99999999)}"


async def real_users(session, otpd, vendor, tally, rng, count, rate, start):
    """`count` real users over three countries, each from an address of its
    own; `rate` of them approve their code."""
    async def one(i):
        country = ["US", "GB", "FR"][i % 3]
        client = f"10.{(start + i) // 65536 % 256}.{(start + i) // 256 % 256}.{(start + i) % 256}"
        phone = real_phone(rng, country)
        vid = await send(session, otpd, phone, client, "real", tally)
        if vid and rng.random() < rate:
            await approve(session, otpd, vendor, phone, vid, client)

    for batch in range(0, count, 25):
        await asyncio.gather(*(one(i) for i in range(batch, min(batch + 25, count))))


async def pump(session, otpd, tally, phones, start):
    """One send per phone, each from an IPv6 /64 of its own, 50 at a time."""
    async def one(i, phone):
        n = start + i
        await send(session, otpd, phone, f"2001:db8:{n // 65536:x}:{n % 65536:x}::1", "pumped", tally)

    for batch in range(0, len(phones), 50):
        await asyncio.gather(*(one(batch + j, p) for j, p in enumerate(phones[batch:batch + 50])))


async def scenario(name, args, vendor, session, attack, settings):
    rng = random.Random(name)
    otpd = Otpd(args.otpd, vendor, args.redis, settings)
    try:
        await otpd.ready(session)
        tally = Tally()
        await real_users(session, otpd, vendor, tally, rng, args.warmup, 0.9, 0)
        before = len(vendor.messages)
        spent_before = await otpd.spent(session, "NG")
        started = time.monotonic()
        per_prefix = await attack(session, otpd, tally, rng)
        took = time.monotonic() - started
        pumped = [to for to, _ in vendor.messages[before:] if to.startswith("+234")]
        wasted = await otpd.spent(session, "NG") - spent_before
        await real_users(session, otpd, vendor, tally, rng, args.warmup, 0.85, 100_000)
        prefixes = {}
        for to in pumped:
            prefixes[to[:-3]] = prefixes.get(to[:-3], 0) + 1
        return {
            "name": name,
            "attempted": per_prefix,
            "pumped": len(pumped),
            "worst_prefix": max(prefixes.values(), default=0),
            "prefixes": len(prefixes),
            "wasted": wasted,
            "real_refused": sum(n for (kind, _), n in tally.refused.items() if kind == "real"),
            "refusals": {code: n for (kind, code), n in tally.refused.items() if kind == "pumped"},
            "took": took,
        }
    finally:
        otpd.stop()


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--otpd", default="target/dist/otpd")
    parser.add_argument("--redis", default=None)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--pump", type=int, default=2000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    vendor = Vendor()
    await vendor.start()

    async def no_attack(session, otpd, tally, rng):
        return 0

    async def fast(session, otpd, tally, rng):
        phones = [f"{PUMPED_PREFIX}{i % 1000:03d}" for i in range(args.pump)]
        await pump(session, otpd, tally, phones, 0)
        return args.pump

    async def many(session, otpd, tally, rng):
        phones = [f"+23480{31000 + p:05d}{i:03d}" for p in range(50) for i in range(40)]
        rng.shuffle(phones)
        await pump(session, otpd, tally, phones, 10_000)
        return len(phones)

    async def slow(session, otpd, tally, rng):
        phones = [f"+23480{32000 + p:05d}{i:03d}" for p in range(5) for i in range(8)]
        await pump(session, otpd, tally, phones, 20_000)
        return len(phones)

    breaker_off = {f"OTPD_FRAUD__{rule}_MODE": "off" for rule in ("COUNTRY", "PREFIX", "CLIENT")}
    capped = dict(breaker_off, OTPD_SPEND__COUNTRY_DAY_HARD="20")
    rows = []
    async with ClientSession(timeout=ClientTimeout(total=30)) as session:
        for name, attack, settings in [
            ("no attack", no_attack, {}),
            ("fast pumping, one prefix", fast, {}),
            ("many prefixes of one country", many, {}),
            ("spread under the prefix floors", slow, {}),
            ("money cap alone (breaker off, 20.00 a day a country)", fast, capped),
        ]:
            rows.append(await scenario(name, args, vendor, session, attack, settings))
            print(f"  {name}: done", file=sys.stderr)

    lines = [
        f"Pumping scenarios (bench/pumping.py, {'Redis' if args.redis else 'memory store'}, "
        f"warm-up {args.warmup} real users at 90 %, then {args.warmup} more at 85 %; "
        f"cost by otpd's approximate price table):",
        "",
        "| scenario | pumped sends tried | reached the vendor | most to one prefix | cost to NG (USD, approx.) | real users refused | attacker refused with |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        refusals = ", ".join(f"{code} {n}" for code, n in sorted(r["refusals"].items())) or "none"
        lines.append(
            f"| {r['name']} | {r['attempted']} | {r['pumped']} | {r['worst_prefix']} | "
            f"{r['wasted']:.2f} | {r['real_refused']} | {refusals} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    breaker_rows = [r for r in rows if not r["name"].startswith("money cap")]
    worst = max(r["worst_prefix"] for r in breaker_rows)
    refused = sum(r["real_refused"] for r in rows)
    ok = worst <= 50 and refused == 0
    print(f"targets: at most 50 pumped SMS per prefix ({worst}), no real user refused ({refused}): "
          f"{'met' if ok else 'NOT met'}")
    await vendor.runner.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
