"""Load tests and benchmarks of votesvc (see loadtest/README.md); not part of the package."""
