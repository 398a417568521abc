"""Billing: subscriptions with history, usage per period, pricing and idempotent invoices.

SPEC.md section 3 is the contract. Pricing and the period schedule are pure functions on
`Decimal` (`money`, `periods`, `schedule`, `pricing`); the store is touched only by
`subscriptions`, `usage` and `invoices`.
"""
