"""slicectl, the command line of slicebroker: grants, capacity, usage and tenants from a shell
(`slicebroker.cli.main:main`, installed as the `slicectl` console script)."""
