# Suites are collected by the pytest-trtbench plugin: each module-level `test_*` Suite becomes one test per case.
