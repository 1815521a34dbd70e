"""The ``modelreg`` command line: a thin layer that parses, calls the SDK and prints.

Library code never imports this package.
"""
