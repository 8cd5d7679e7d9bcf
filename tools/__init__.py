"""Command-line tools; importable as ``tools.*`` from the repository root (tests)."""
