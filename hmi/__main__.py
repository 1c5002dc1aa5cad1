"""`python -m hmi`: the console."""

import sys

from hmi.app import hmi_main

sys.exit(hmi_main(sys.argv[1:]))
