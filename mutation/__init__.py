"""``make mutate``: mutation testing of the modules that carry the product's promises.

Each module in ``mutation/modules.toml`` is tested on its own, in a scratch project under
``mutants/<module>/`` that mutmut copies, mutates and tests: its package's source, the test
selection that exercises the module, and a generated ``pyproject.toml`` (the suite's pytest
settings plus mutmut's). Nothing here is imported by the library or by the tests.
"""
