"""Use cases and adapters shared by the Lambda functions."""
