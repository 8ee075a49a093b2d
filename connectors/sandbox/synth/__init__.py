"""A seeded synthetic world of a WHMCS hosting business: invoices, money, and the truth.

`generate(SynthConfig(n_invoices=..., seed=...))` returns a `World` whose frames have the shapes
of the `recon match` files (DESIGN §4.3: amounts as decimal strings, ISO dates), plus the ground
truth: which payment settles which invoice with what amount, and which exception each other
transaction should raise. Everything is vectorised with numpy and Arrow, so a million invoices
take seconds, and the same seed gives the same world, byte for byte.

Each kind of noise has its own rate in `SynthConfig`: references in many styles and languages,
bank prefixes, cuts at 18 characters, decoy numbers (client ids, dates, phones, amounts, order
numbers), typos, payments without reference, payer names written every which way or by someone
else, combined payments, partial and over-payments, bank fees deducted, duplicates, payments for
closed invoices and in other currencies, outgoing payments and non-customer credits, Stripe and
GoCardless charges with fees, refunds, disputes and payouts (some arriving short), staff-recorded
bank payments and recorded payments with no money behind them.

The package is split by job: `model` (config and world), `vocab` (names and prices), `frames`
(Arrow helpers), `parties` (clients, invoices, payer names, references), `bank`, `providers`
(Stripe and GoCardless), `noise` (lines that are not customer payments) and `assemble`
(`generate`).
"""

from connectors.sandbox.synth.assemble import generate
from connectors.sandbox.synth.model import SynthConfig, World
from connectors.sandbox.synth.vocab import (
    COMPANY_A,
    COMPANY_B,
    COMPANY_C,
    FIRST_NAMES,
    LEGAL_FORMS,
    NON_CUSTOMERS,
    PRICE_TIERS,
    SUPPLIERS,
    SURNAME_HEADS,
    SURNAME_MIDDLES,
    SURNAME_TAILS,
)

__all__ = [
    "COMPANY_A",
    "COMPANY_B",
    "COMPANY_C",
    "FIRST_NAMES",
    "LEGAL_FORMS",
    "NON_CUSTOMERS",
    "PRICE_TIERS",
    "SUPPLIERS",
    "SURNAME_HEADS",
    "SURNAME_MIDDLES",
    "SURNAME_TAILS",
    "SynthConfig",
    "World",
    "generate",
]
