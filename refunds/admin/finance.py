"""Admin screens: finance."""
