"""Test fake of moveit_py (MoveIt 2's Python bindings): same module layout, class names and signatures as
the parts dp_control uses (``moveit.planning``, ``moveit.core.robot_model``, ``moveit.core.robot_state``,
``moveit.core.planning_scene``), with a toy collision model. Never installed; tests put this directory's
parent on ``sys.path`` only where the real moveit_py does not import. See ``fakes/README.md``.
"""
