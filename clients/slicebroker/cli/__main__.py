"""`python -m slicebroker.cli` runs slicectl."""

from slicebroker.cli.main import main

main()
