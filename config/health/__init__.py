"""Is the product up, and is its background work moving? (`/health/`, `check_workers`)"""
