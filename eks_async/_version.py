#: The version of eks_async.
__version__ = "0.1.0.dev0"
