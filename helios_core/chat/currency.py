"""Which columns hold a currency and which hold money: amounts in different currencies never add up.

Shared by the built-in assistant (which splits such amounts by their currency) and
the answer sentence (which names the currency beside each amount).
"""

from __future__ import annotations

from collections.abc import Iterable

# ISO codes that tell a column of three-letter codes is a currency (and not, say, a country).
CURRENCY_CODES = frozenset({"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "CNY", "HKD", "SGD", "INR",
                            "BRL", "MXN", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "KRW", "ZAR", "TRY", "ILS",
                            "AED", "SAR", "THB", "IDR"})
MONEY_HINTS = ("amount", "revenue", "price", "cost", "total", "spend", "sales", "value", "fee", "gmv", "income",
               "paid", "payment", "charge", "refund", "balance", "tax")


def is_currency_name(name: str) -> bool:
    lowered = name.lower()
    return "currency" in lowered or lowered in ("ccy", "curr")


def are_currency_codes(values: Iterable[str]) -> bool:
    """Three-letter upper-case codes, at least one of them a known currency."""
    codes = [str(v) for v in values]
    return bool(codes) and all(len(v) == 3 and v.isalpha() and v.isupper() for v in codes) \
        and any(v in CURRENCY_CODES for v in codes)


def is_money_name(name: str) -> bool:
    lowered = name.lower()
    return any(h in lowered for h in MONEY_HINTS)
