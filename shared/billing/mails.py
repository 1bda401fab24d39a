"""Billing mails: receipts and payment notices (P17, P18).

Transactional: sent whatever the marketing consent, because they are about a contract the
customer has with us (P18). They name amounts, periods and Stripe's hosted invoice page, never any
payment method detail (P13): Stripe holds the card, and the hosted page is where the customer sees
or fixes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.mail import Mail

ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)


def money(amount: int | None, currency: str | None) -> str:
    code = (currency or "").lower()
    value = amount or 0
    if code in ZERO_DECIMAL:
        return f"{value} {code.upper()}"
    return f"{value / 100:.2f} {code.upper()}".strip()


def day(value: datetime | None) -> str:
    return value.strftime("%d %B %Y") if value else "-"


def _invoice_lines(invoice: dict[str, Any]) -> str:
    lines = [f"Invoice: {invoice.get('number') or invoice.get('id')}"]
    if invoice.get("period_start") and invoice.get("period_end"):
        lines.append(f"Period: {day(invoice['period_start'])} to {day(invoice['period_end'])}")
    if invoice.get("hosted_invoice_url"):
        lines.append(f"Invoice page: {invoice['hosted_invoice_url']}")
    return "\n".join(lines)


def receipt(to: str, first_name: str, plan_name: str, invoice: dict[str, Any]) -> Mail:
    paid = money(invoice.get("amount_paid"), invoice.get("currency"))
    return Mail(
        to=to,
        subject=f"Receipt for your WizyVision {plan_name} subscription",
        category="transactional",
        text=(
            f"Hello {first_name},\n\nThank you: we received your payment of {paid} for WizyVision {plan_name}.\n\n"
            f"{_invoice_lines(invoice)}\n\nThe invoice page has the PDF for your records."
        ),
    )


def payment_failed(to: str, first_name: str, app_url: str, invoice: dict[str, Any]) -> Mail:
    due = money(invoice.get("amount_due"), invoice.get("currency"))
    return Mail(
        to=to,
        subject="Your WizyVision payment failed",
        category="transactional",
        text=(
            f"Hello {first_name},\n\nWe could not collect {due} for your WizyVision subscription. We will try "
            "again over the next days; to avoid an interruption, update your payment method in the billing "
            f"portal ({app_url}/billing) or pay on the invoice page.\n\n{_invoice_lines(invoice)}"
        ),
    )


def action_required(to: str, first_name: str, invoice: dict[str, Any]) -> Mail:
    due = money(invoice.get("amount_due"), invoice.get("currency"))
    return Mail(
        to=to,
        subject="Confirm your WizyVision payment",
        category="transactional",
        text=(
            f"Hello {first_name},\n\nYour bank asks you to confirm the payment of {due} for your WizyVision "
            "subscription. Open the invoice page to confirm it; until then the payment stays pending.\n\n"
            f"{_invoice_lines(invoice)}"
        ),
    )


def checkout_payment_failed(to: str, first_name: str, app_url: str) -> Mail:
    return Mail(
        to=to,
        subject="Your WizyVision payment did not go through",
        category="transactional",
        text=(
            f"Hello {first_name},\n\nThe payment you started for a WizyVision subscription did not go through, "
            f"so the subscription is not active. You can try again from {app_url}/billing."
        ),
    )


def trial_ending(to: str, first_name: str, plan_name: str, trial_end: datetime | None, app_url: str) -> Mail:
    return Mail(
        to=to,
        subject=f"Your WizyVision {plan_name} trial ends on {day(trial_end)}",
        category="transactional",
        text=(
            f"Hello {first_name},\n\nYour trial of WizyVision {plan_name} ends on {day(trial_end)}. To keep your "
            f"plan, make sure a payment method is on file in the billing portal ({app_url}/billing); "
            "otherwise the subscription stops at the end of the trial."
        ),
    )
