"""``python -m eks_async``: the eks-async command line."""

from ._cli import entry

entry()
