"""Helpers the test packages share (not fixtures: each package wires them into its own)."""
