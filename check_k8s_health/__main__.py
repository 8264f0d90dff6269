"""Allows ``python -m check_k8s_health`` where the console script is not on PATH."""

from check_k8s_health.cli import main

main()
