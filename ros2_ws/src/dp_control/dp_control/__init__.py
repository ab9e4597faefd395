"""dp_control: action chunks -> smooth, safe joint commands (ROS-free core in dp_control.core)."""
