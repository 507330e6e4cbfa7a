"""Operational commands of the project (database migrations and friends)."""
