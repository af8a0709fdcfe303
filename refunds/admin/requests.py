"""Admin screens: requests."""
