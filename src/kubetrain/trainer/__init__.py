"""The trainer runtime: what runs inside each Ray Train worker."""
