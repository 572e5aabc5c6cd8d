"""Seeded API data: invoices and clients per account and network, in Request Finance's shapes."""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

from rfcheck.facts import NETWORKS
from rfcheck.provider.accounts import ACME_ORG, DEFAULT_USER, SOLO_USER

CURRENCIES = [
    {"id": "USDC-mainnet", "symbol": "USDC", "decimals": 6, "network": "mainnet", "type": "ERC20"},
    {"id": "ETH-mainnet", "symbol": "ETH", "decimals": 18, "network": "mainnet", "type": "ETH"},
    {"id": "DAI-matic", "symbol": "DAI", "decimals": 18, "network": "matic", "type": "ERC20"},
    {"id": "EUR", "symbol": "EUR", "decimals": 2, "network": "", "type": "ISO4217"},
    {"id": "FAU-sepolia", "symbol": "FAU", "decimals": 18, "network": "sepolia", "type": "ERC20"},
]
_ids = itertools.count(1)


def _invoice(owner: str, number: str, buyer: str, amount: str, currency: str, network: str) -> dict[str, Any]:
    n = next(_ids)
    return {
        "id": f"{n:024x}", "invoiceNumber": number, "creationDate": "2026-11-02T10:00:00.000Z",
        "status": "open", "network": network, "owner": owner,
        "buyerInfo": {"businessName": buyer, "email": f"ap@{buyer.lower().replace(' ', '')}.example"},
        "sellerInfo": {"businessName": owner},
        "invoiceItems": [{"name": "Consulting", "quantity": 1, "unitPrice": amount, "currency": currency}],
        "paymentCurrency": currency, "paymentTerms": {"dueDate": "2026-12-02T10:00:00.000Z"},
        "requestId": None,
    }


def _seed(owner: str, label: str) -> dict[str, list[dict[str, Any]]]:
    return {network: [_invoice(owner, f"{label}-{network.upper()}-{i}", buyer, amount, currency, network)
                      for i, (buyer, amount, currency) in enumerate(
                          [("Globex Corp", "120000000", "USDC-mainnet"), ("Initech", "4500", "EUR")], start=1)]
            for network in NETWORKS}


class ApiData:
    """Invoices and clients per (account, network). An account is a user, an org or a client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._invoices: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._clients: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for owner, label in ((DEFAULT_USER.sub, "ADA"), (SOLO_USER.sub, "BO"), (ACME_ORG.id, "ACME")):
            for network, invoices in _seed(owner, label).items():
                self._invoices[(owner, network)] = invoices

    def invoices(self, account: str, network: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._invoices.get((account, network), []))

    def find_invoice(self, account: str, network: str, invoice_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = [i for i in self._invoices.get((account, network), []) if i["id"] == invoice_id]
        return copy.deepcopy(found[0]) if found else None

    def add_invoice(self, account: str, network: str, body: dict[str, Any]) -> dict[str, Any]:
        invoice = {**_invoice(account, str(body.get("invoiceNumber", "")), "", "0", "", network), **body,
                   "owner": account, "network": network}
        invoice["id"] = f"{next(_ids):024x}"
        with self._lock:
            self._invoices.setdefault((account, network), []).append(invoice)
        return copy.deepcopy(invoice)

    def update_invoice(self, account: str, network: str, invoice_id: str, **changes: Any) -> dict[str, Any] | None:
        with self._lock:
            for invoice in self._invoices.get((account, network), []):
                if invoice["id"] == invoice_id:
                    invoice.update(changes)
                    return copy.deepcopy(invoice)
        return None

    def clients(self, account: str, network: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._clients.get((account, network), []))

    def add_client(self, account: str, network: str, body: dict[str, Any]) -> dict[str, Any]:
        client = {**body, "id": f"{next(_ids):024x}"}
        with self._lock:
            self._clients.setdefault((account, network), []).append(client)
        return copy.deepcopy(client)
