#!/usr/bin/env python3
"""A third-party client for the card-issuing API, written from shared/api/REFERENCE.md alone.

Usage: python3 tests/interop/client.py BASE_URL API_KEY API_SECRET

It exercises every endpoint of REFERENCE.md section 3 against the server at BASE_URL (cardform's
sandbox in CI) and exits non-zero on the first mismatch with the reference. Needs Python 3 and
PyNaCl (`pip install pynacl`); everything else is the standard library.
"""

import base64
import hashlib
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal

import nacl.secret
import nacl.utils

FORMAT_VERSION = 0x02
TERMINAL = {"completed", "failed"}


class Mismatch(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Mismatch(what)


class Client:
    def __init__(self, base_url, api_key, api_secret):
        self.base = base_url.rstrip("/")
        self.api_key = api_key
        # key = raw SHA-256 digest of the UTF-8 api secret (section 2)
        self.box = nacl.secret.SecretBox(hashlib.sha256(api_secret.encode("utf-8")).digest())
        self._last_ts = 0
        self._lock = threading.Lock()

    def timestamp(self):
        # microseconds since the epoch, strictly increasing (duplicates are rejected as replays)
        with self._lock:
            ts = max(time.time_ns() // 1000, self._last_ts + 1)
            self._last_ts = ts
            return ts

    def seal(self, plaintext: bytes) -> str:
        nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
        sealed = self.box.encrypt(plaintext, nonce).ciphertext  # tag || encrypted bytes
        raw = bytes([FORMAT_VERSION]) + nonce + sealed
        expect(len(raw) == 1 + 24 + 16 + len(plaintext), "envelope length")
        return base64.b64encode(raw).decode("ascii")

    def open(self, encoded: str) -> bytes:
        raw = base64.b64decode(encoded)
        expect(raw[0] == FORMAT_VERSION, f"unsupported envelope format {raw[0]:#x}")
        return self.box.decrypt(raw[25:], raw[1:25])

    def call(self, path, fields=None, idempotency_key=None):
        """Returns (http_status, decoded_object). Success bodies are unwrapped from `data`."""
        payload = dict(fields or {})
        payload["request_timestamp"] = self.timestamp()
        body = json.dumps({"encrypted": self.seal(json.dumps(payload).encode())}).encode()
        headers = {"Content-Type": "application/json", "API-KEY": self.api_key}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        req = urllib.request.Request(f"{self.base}/api/v1/{path}", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        outer = json.loads(raw)
        inner = json.loads(self.open(outer["encrypted"])) if "encrypted" in outer else outer
        if isinstance(inner, dict) and inner.get("success") is False:
            return status, inner
        if isinstance(inner, dict) and inner.get("success") is True and "data" in inner:
            inner = inner["data"]
        return status, inner

    def ok(self, path, fields=None, idempotency_key=None):
        status, body = self.call(path, fields, idempotency_key)
        expect(200 <= status < 300, f"{path}: HTTP {status} {body}")
        expect(not (isinstance(body, dict) and body.get("success") is False), f"{path}: {body}")
        return body

    def error(self, path, fields=None, idempotency_key=None):
        status, body = self.call(path, fields, idempotency_key)
        expect(400 <= status < 600, f"{path}: expected an error, got HTTP {status}")
        expect(body.get("success") is False and body.get("error_slug"), f"{path}: error body {body}")
        return status, body["error_slug"]

    def wait(self, order_id, timeout=15.0):
        deadline = time.time() + timeout
        while True:
            order = self.ok("orders/check", {"order_id": order_id})
            expect(order["order_id"] == order_id, "orders/check returned another order")
            if order["status"] in TERMINAL:
                return order
            expect(time.time() < deadline, f"order {order_id} not terminal in {timeout}s: {order}")
            time.sleep(0.1)


def charge(order):
    return Decimal(order["balance_before"]) - Decimal(order["balance_after"])


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    c = Client(*sys.argv[1:])
    run = uuid.uuid4().hex[:8]
    uid = f"py-{run}"

    products = c.ok("cards/products")
    products = products["products"] if isinstance(products, dict) else products
    by_code = {p["product_code"]: p for p in products}
    active = [p for p in products if p.get("is_active") and "issue_fee" in p]
    expect(active, "no active product with published fees")
    expect(any(not p.get("is_active", True) for p in products), "no inactive product")
    product = active[0]
    print(f"products: {sorted(by_code)}")

    balance = c.ok("project/balance")
    expect(balance["currency"] == "usdt", f"balance currency {balance}")
    start = Decimal(balance["available"])
    print(f"balance: {start}")

    user = c.ok("users/create", {"external_user_id": uid})
    expect(user.get("external_user_id") == uid, f"users/create {user}")

    holder = c.ok("cardholders/create", {
        "external_user_id": uid, "subprovider_code": product.get("subprovider_code") or "default",
        "first_name": "Grace", "last_name": "Hopper", "birth_date": "1986-12-09",
        "email": "grace@example.com", "phone_number_full": "+12025550123", "country_iso": "US",
    })
    for field in ("cardholder_id", "registration_status", "kyc_status"):
        expect(field in holder, f"cardholder lacks {field}: {holder}")

    # Mutations need an Idempotency-Key.
    status, slug = c.error("cards/create", {"external_user_id": uid, "product_code": product["product_code"]})
    expect(slug == "idempotency_key_required", f"missing key gave {slug}")

    amount = Decimal(product.get("min_topup") or "10.00")
    key = f"issue-{run}"
    req = {"external_user_id": uid, "product_code": product["product_code"], "initial_topup_amount": str(amount)}
    order = c.ok("cards/create", req, key)
    expect(order["order_type"] == "card_issue", f"order type {order}")
    fee_pct, fee_fixed = Decimal(product["topup_fee_percent"]), Decimal(product["topup_fee_fixed"])
    estimate = (Decimal(product["issue_fee"]) + amount + amount * fee_pct / 100 + fee_fixed).quantize(Decimal("0.01"))
    expect(charge(order) == estimate, f"charged {charge(order)}, reference formula says {estimate}")

    again = c.ok("cards/create", req, key)
    expect(again["order_id"] == order["order_id"], "idempotent replay returned another order")
    status, slug = c.error("cards/create", dict(req, initial_topup_amount=str(amount + 1)), key)
    expect(status == 409 and slug == "idempotency_key_conflict", f"conflict gave {status} {slug}")
    expect(Decimal(c.ok("project/balance")["available"]) == start - estimate, "charged more than once")

    done = c.wait(order["order_id"])
    expect(done["status"] == "completed", f"issue order ended {done}")
    card_id = done["card_id"]
    print(f"issued card {card_id} for {charge(order)}")

    card = c.ok("cards/get", {"card_id": card_id})
    pan = card["card_number"]
    digits = [int(ch) for ch in pan]
    luhn = sum(digits[-1::-2]) + sum(sum(divmod(2 * dd, 10)) for dd in digits[-2::-2])
    expect(luhn % 10 == 0, "PAN fails the Luhn check")
    expect(card["status"] == "active", f"card status {card['status']}")
    expect(len(str(card["cvv"])) == 3, "cvv")

    topup_amount = amount
    topup = c.ok("cards/topup", {"card_id": card_id, "amount": str(topup_amount)}, f"topup-{run}")
    expect(topup["order_type"] == "card_topup", f"topup order {topup}")
    expect(charge(topup) == (topup_amount + topup_amount * fee_pct / 100 + fee_fixed).quantize(Decimal("0.01")),
           f"topup charged {charge(topup)}")
    expect(c.wait(topup["order_id"])["status"] == "completed", "topup did not complete")
    card = c.ok("cards/get", {"card_id": card_id})
    expect(Decimal(card["balance"]) == amount + topup_amount, f"card balance {card['balance']}")

    freeze = c.ok("cards/freeze", {"card_id": card_id, "external_user_id": uid}, f"freeze-{run}")
    expect(c.wait(freeze["order_id"])["status"] == "completed", "freeze did not complete")
    expect(c.ok("cards/get", {"card_id": card_id})["status"] == "frozen", "card not frozen")
    status, slug = c.error("cards/topup", {"card_id": card_id, "amount": str(topup_amount)}, f"topup2-{run}")
    expect(slug == "card_not_active", f"topup of a frozen card gave {slug}")

    unfreeze = c.ok("cards/unfreeze", {"card_id": card_id, "external_user_id": uid}, f"unfreeze-{run}")
    expect(c.wait(unfreeze["order_id"])["status"] == "completed", "unfreeze did not complete")
    expect(c.ok("cards/get", {"card_id": card_id})["status"] == "active", "card not active again")

    status, slug = c.error("orders/check", {"order_id": "no-such-order"})
    expect(status == 404 and slug == "order_not_found", f"unknown order gave {status} {slug}")

    wrong = Client(sys.argv[1], sys.argv[2] + "-wrong", sys.argv[3])
    status, slug = wrong.error("project/balance")
    expect(slug == "project_not_found", f"wrong API-KEY gave {slug}")

    print("ALL OK")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)
