"""Waiters: the polling engine, and the identity waiters built on it."""
