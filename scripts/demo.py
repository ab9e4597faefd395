"""Main job placeholder: replaced by the closed-loop simulator demo."""

import sys

print("make demo: the closed-loop simulator demo is not available yet in this checkout.")
sys.exit(1)
