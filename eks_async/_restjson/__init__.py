"""EKS's rest-json protocol: requests from typed values, outputs and errors from answers."""
