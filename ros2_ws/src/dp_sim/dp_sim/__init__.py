"""dp_sim: MuJoCo tabletop simulator of a Franka Panda for the dp pipeline."""
