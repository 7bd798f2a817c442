"""Test settings: production settings, but plain HTTP for the test client and live server
(SecurityMiddleware reads SECURE_SSL_REDIRECT once, when the live server builds its handler)."""

from qcos.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests
# The live server handles each request in a new thread: persistent connections would outlive
# those threads and keep the test database open at teardown.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

import os  # noqa: E402
import tempfile  # noqa: E402

# Signing keys generated during tests stay out of the developer's var/keys.
QCOS = {**QCOS, "KEY_DIR": tempfile.mkdtemp(prefix="qcos-test-keys-")}  # noqa: F405
# Published audit checkpoints likewise (emptied before each test: tests/conftest.py). Worker
# processes started by integration tests publish where the test process verifies, and pin their
# ledger key where it looks (tests/integration/conftest.py); deliberately not QCOS_AUDIT_CHECKPOINT_DIR,
# so a developer's own checkpoint directory is never emptied by a test run.
QCOS["AUDIT_CHECKPOINT_DIR"] = (os.environ.get("QCOS_TEST_AUDIT_CHECKPOINT_DIR")  # noqa: F405
                                or tempfile.mkdtemp(prefix="qcos-test-audit-checkpoints-"))
QCOS["LEDGER_TRUSTED_KEYS_DIR"] = os.environ.get("QCOS_TEST_LEDGER_TRUSTED_KEYS_DIR", "")  # noqa: F405
# Tests sequence the registry and the audit log explicitly (one test covers the inline mode).
QCOS["SEQUENCE_INLINE"] = False  # noqa: F405
