"""Signing and credentials: SigV4, the credential chain, cluster tokens."""
