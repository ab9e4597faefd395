"""Fake of moveit_py's ``moveit`` package (MoveIt 2 Python bindings) for tests: see ../README.md."""
