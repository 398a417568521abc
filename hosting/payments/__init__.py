"""Getting paid (issue 15): invoices collected through Stripe PaymentIntents, webhooks that
move them to paid or failed, refunds as credit notes, and dunning (retries, reminders,
suspension) on an injectable clock.

Why PaymentIntents rather than Stripe Invoices: the invoice is already a legal document of
ours (number, lines, tax, credit notes, PDF); a Stripe Invoice would be a second document with
its own numbering and totals to keep in step. A PaymentIntent is only the charge: one per
invoice, created with the invoice number as its idempotency key.
"""
