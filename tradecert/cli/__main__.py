"""`python -m tradecert.cli`, as the `tradecert` script."""

from tradecert.cli import main

main()
