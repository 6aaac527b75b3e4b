"""Transports: how a signed request reaches EKS and its answer comes back (see ``base``)."""
