"""FinOps for QCOS: versioned price sheets, pre-submit estimates, settlement, budgets and reports.

The pricing core (``finops.catalog``, ``finops.counts``, ``finops.pricing``) is plain Python with
no Django import, so the SDK, the CLI and the workers can price a circuit exactly as the server
does. Money is ``decimal.Decimal`` throughout.
"""
