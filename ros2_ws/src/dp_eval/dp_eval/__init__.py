"""dp_eval: offline evaluation of dp policies by rosbag replay."""
