"""Fake ``moveit.core``."""
