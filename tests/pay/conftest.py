"""The review tests' ``ops`` fixture (an organization's customer, workers and reviewers over
HTTP) for the ledger's tests."""

from tests.api.test_review import ops, password_hash

__all__ = ["ops", "password_hash"]
