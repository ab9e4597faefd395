"""Shared helpers of the dp pipeline (QoS, typed parameters, diagnostics, joint states)."""
