"""`python -m twooter …` is the `twooter` command."""
from .cli import main

main()
