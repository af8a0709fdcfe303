"""Admin screens: policy."""
