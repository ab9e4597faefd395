"""dp_perception: point clouds -> fixed-size policy input."""
