"""`python -m bench`: the whole benchmark (bench/run.py)."""

from bench.run import main

main()
