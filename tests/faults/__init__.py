"""Fault tests: one test per defect found by probing the app as a careful user and an attacker would
(corrupted packages, kills during saves, hostile files, out-of-range options, prompts of any Unicode).

Each test names the finding it guards (issue #16 numbers them) and failed before its fix. The module
grows with every defect found: add the failing test here first, then fix.
"""
