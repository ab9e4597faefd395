"""moveit.core of the moveit_py fake."""
