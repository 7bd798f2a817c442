"""QCOS ledger: audit log, provenance, evidence bundles and the transparency registry.

This package must stay importable without Django: ``ledger.crypto`` is shared by the
server, the SDK and the CLI. Keep Django imports out of this file.
"""
