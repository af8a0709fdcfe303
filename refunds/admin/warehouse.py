"""Admin screens: warehouse."""
