"""Fixtures for tests/e2e/test_doctor.py: test PKI, TLS/HTTP/DNS servers."""
