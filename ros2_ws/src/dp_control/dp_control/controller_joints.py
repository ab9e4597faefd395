"""Start-up check of the position backend: the controller's ``joints`` must be ``joint_names``.

Float64MultiArray columns are positional, so the forward position controller's ``joints`` parameter
is read once (``<controller_name>/get_parameters``) and compared with ``joint_names``
(:func:`dp_control.backends.check_controller_joints`). When it cannot be read in time the node
goes on, with a warning that the column order is not verified.
"""

from __future__ import annotations

import time

from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters

from dp_control.backends import check_controller_joints


class ControllerJointsCheck:
    """Asynchronous read-and-compare of a controller's ``joints`` parameter, advanced by ``poll``.

    Args:
        node: the rclpy node that owns the service client (and whose logger reports).
        controller_name: the forward position controller's node name.
        joint_names: the controlled joints, in command column order.
        timeout_s: [s, steady clock] how long to wait for the service, and then for its answer.
    """

    def __init__(self, node, controller_name: str, joint_names: list[str], timeout_s: float) -> None:
        self._node = node
        self._controller_name = controller_name
        self._joint_names = list(joint_names)
        self._timeout_s = timeout_s
        self._client = node.create_client(GetParameters, f"{controller_name}/get_parameters")
        self._future = None
        self._deadline = time.monotonic() + timeout_s
        self.done = False

    def poll(self) -> str | None:
        """Advance the check (call from the executor).

        Returns:
            The mismatch message when the controller's joints differ from ``joint_names`` (then
            ``done``); None otherwise, with ``done`` true once the check is over (matched, or the
            parameter could not be read in time).
        """
        if self.done:
            return None
        if self._future is None:
            if self._client.service_is_ready():
                self._future = self._client.call_async(GetParameters.Request(names=["joints"]))
            elif time.monotonic() > self._deadline:
                self._node.get_logger().warning(
                    f"could not read {self._controller_name}'s 'joints' parameter within "
                    f"{self._timeout_s} s: column order NOT verified "
                    f"(sending in joint_names order {self._joint_names})"
                )
                self.done = True
            return None
        if not self._future.done():
            if time.monotonic() > self._deadline + self._timeout_s:
                self.done = True
            return None
        self.done = True
        values = self._future.result().values if self._future.result() else []
        joints = (
            list(values[0].string_array_value)
            if values and values[0].type == ParameterType.PARAMETER_STRING_ARRAY
            else None
        )
        error = check_controller_joints(self._joint_names, joints)
        if error:
            return error
        self._node.get_logger().info(f"controller joints match joint_names {self._joint_names}")
        return None
