"""Inference API: load a checkpoint, predict an action chunk from an observation history.

Example::

    policy = Policy.from_checkpoint("ckpt/latest", device="cpu")
    obs = {"point_cloud": clouds,  # (n_obs_steps, N, 3|6) float32, in policy.config.perception frame
           "agent_pos": states}    # (n_obs_steps, state_dim)
    actions = policy.predict_action(obs)       # (n_action_steps, action_dim): what the robot executes
    chunk = policy.predict_action_chunk(obs)   # (horizon, action_dim): every predicted row

Timeline (DP / DP3; ``n_obs_steps=2, horizon=16, n_action_steps=8``; rows ``dt`` apart)::

    row            0    1    2   ...   8    9  ...  15
    observations  o0   o1                               o1 is "now" (row n_obs_steps - 1)
    chunk         a0   a1   a2  ...   a8   a9  ...  a15  predict_action_chunk: all horizon rows
    executed           a1   a2  ...   a8                 predict_action: rows n_obs_steps-1 ..
                                                         n_obs_steps-1+n_action_steps-1

Row ``n_obs_steps - 1`` is the action for "now"; earlier rows are the (already past) actions of the
observation history, later rows beyond the executed ones are the policy's look-ahead (used by
temporal ensembling / chunk blending). The training windows are built the same way
(:class:`dp_policy.core.dataset.SequenceDataset`).

Everything that does not depend on the observation (DDIM coefficients, the step-embedding part of
every FiLM projection, GEMM-friendly weight layouts) is computed once at load time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dp_policy.core.checkpoint import load_checkpoint
from dp_policy.core.config import PolicyConfig
from dp_policy.core.fast_conv import prepare_fast_convs
from dp_policy.core.model import DiffusionPolicyModel
from dp_policy.core.normalizer import Normalizer
from dp_policy.core.vision import dummy_image_obs, image_obs_tensors  # image DP (issue 9)

logger = logging.getLogger(__name__)


class Policy:
    """A loaded policy (EMA weights, normalizer, config) ready for batch-1 inference."""

    def __init__(
        self,
        config: PolicyConfig,
        model: DiffusionPolicyModel,
        normalizer: Normalizer,
        device: str | torch.device = "cpu",
        num_inference_steps: int | None = None,
        compile: bool = False,
        fast: bool = True,
        policy_id: str = "",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.model.requires_grad_(False)
        self.normalizer = normalizer
        self.policy_id = policy_id or config.name
        self.num_inference_steps = int(num_inference_steps or config.num_inference_steps)
        if self.num_inference_steps <= 0:
            raise ValueError(f"num_inference_steps must be > 0. Got {self.num_inference_steps}")
        self.fast = fast
        prepare_fast_convs(self.model, enable=fast, prepack=not compile)
        if fast and self.device.type == "cpu" and hasattr(self.model.obs_encoder, "use_channels_last"):
            self.model.obs_encoder.use_channels_last(True)  # image encoder: NHWC convs (~2x on CPU)
        self.model.clear_cache()
        self._compiled = False
        if compile:
            self.compile()

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        num_inference_steps: int | None = None,
        compile: bool = False,
        warmup: bool = True,
    ) -> Policy:
        """Load a checkpoint directory (raises CheckpointError, a ValueError, naming the problem)."""
        cfg, model, norm, _ = load_checkpoint(path, device)
        policy = cls(
            cfg, model, norm, device, num_inference_steps, compile, policy_id=f"{cfg.name}:{Path(path).name}"
        )
        if warmup:
            policy.warmup()
        return policy

    # ------------------------------------------------------------------ control
    def set_num_inference_steps(self, n: int) -> None:
        """Change the number of DDIM / Euler steps (tables are rebuilt lazily)."""
        if n <= 0 or (self.config.objective == "diffusion" and n > self.config.num_train_timesteps):
            raise ValueError(f"num_inference_steps must be in 1..{self.config.num_train_timesteps}. Got {n}")
        self.num_inference_steps = int(n)

    def reset(self) -> None:
        """Start a new episode. The policy keeps no observation state; the caller owns the history."""

    def compile(self) -> None:
        """``torch.compile`` the denoising network (falls back to eager if compilation fails)."""
        # Dynamo cannot trace oneDNN's opaque prepacked weights: compiled graphs use plain GEMMs
        # (re-laid out only when the weights were prepacked, i.e. compile after construction).
        if any(getattr(m, "_packed_w", None) is not None for m in self.model.modules()):
            prepare_fast_convs(self.model, enable=self.fast, prepack=False)
        try:
            self.model.model.forward_film = torch.compile(self.model.model.forward_film, dynamic=False)
            self._compiled = True
        except Exception as exc:  # pragma: no cover - depends on the toolchain
            logger.warning("torch.compile unavailable, running eager: %s", exc)

    def warmup(self, iterations: int = 2) -> float:
        """Run dummy predictions (allocations, lazy tables, compilation); returns the last latency s."""
        cfg = self.config
        obs: dict[str, np.ndarray] = {"agent_pos": np.zeros((cfg.n_obs_steps, cfg.state_dim), np.float32)}
        if "point_cloud" in cfg.obs_keys:
            pts = np.random.default_rng(0).uniform(-0.1, 0.1, (cfg.n_obs_steps, cfg.encoder.num_points, 3))
            if cfg.encoder.use_rgb:
                pts = np.concatenate([pts, np.full_like(pts, 0.5)], axis=-1)
            obs["point_cloud"] = pts.astype(np.float32)
        obs.update(dummy_image_obs(cfg))  # image DP: gray frames per camera (none for DP3)
        dt = 0.0
        for _ in range(iterations):
            t0 = time.perf_counter()
            self.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0))
            dt = time.perf_counter() - t0
        return dt

    # ------------------------------------------------------------------ inference
    def _obs_tensors(self, obs: dict[str, Any]) -> tuple[dict[str, torch.Tensor], bool]:
        cfg = self.config
        for key in cfg.obs_keys:
            if key not in obs:
                raise ValueError(f"observation is missing {key!r}; expected keys {list(cfg.obs_keys)}")
        state = torch.as_tensor(np.asarray(obs["agent_pos"], dtype=np.float32))
        batched = state.dim() == 3
        if not batched:
            if state.dim() != 2:
                raise ValueError(
                    f"agent_pos must be (n_obs_steps, {cfg.state_dim}). Got {tuple(state.shape)}"
                )
            state = state[None]
        if state.shape[1] < cfg.n_obs_steps or state.shape[2] != cfg.state_dim:
            raise ValueError(
                f"agent_pos must be (n_obs_steps={cfg.n_obs_steps}, state_dim={cfg.state_dim}). "
                f"Got {tuple(state.shape[1:])}"
            )
        out = {"agent_pos": self.normalizer.normalize("agent_pos", state[:, -cfg.n_obs_steps :])}
        if "point_cloud" in cfg.obs_keys:
            pc = torch.as_tensor(np.asarray(obs["point_cloud"], dtype=np.float32))
            if not batched:
                pc = pc[None]
            need = cfg.encoder.point_channels
            if pc.dim() != 4 or pc.shape[1] < cfg.n_obs_steps or pc.shape[3] < need or pc.shape[2] < 1:
                raise ValueError(
                    f"point_cloud must be (n_obs_steps={cfg.n_obs_steps}, N, {need}). "
                    f"Got {tuple(pc.shape[1:])}"
                )
            pc = pc[:, -cfg.n_obs_steps :, :, :need]
            if cfg.normalize_points:
                pc = self.normalizer.normalize("point_cloud", pc)
            out["point_cloud"] = pc
        out.update(image_obs_tensors(obs, cfg, batched))  # image DP: uint8 (B, n_obs, H, W, 3) per camera
        for v in out.values():
            if not torch.isfinite(v).all():
                raise ValueError("observation contains NaN or inf")
        return {k: v.to(self.device) for k, v in out.items()}, batched

    def predict_action_chunk(
        self,
        obs: dict[str, Any],
        generator: torch.Generator | None = None,
        noise: np.ndarray | torch.Tensor | None = None,
        prefix: np.ndarray | None = None,
    ) -> np.ndarray:
        """Sample an action chunk.

        Args:
            obs: ``point_cloud`` (n_obs_steps, N, 3|6) and ``agent_pos`` (n_obs_steps, state_dim)
                (extra leading history is trimmed to the last n_obs_steps; a leading batch dim B
                is allowed on both).
            generator: torch.Generator for the initial noise (ignored when ``noise`` is given).
            noise: initial noise (horizon, action_dim) or (B, horizon, action_dim).
            prefix: (d, action_dim) actions in action units (or (B, d, A)) that the first d rows
                must equal (hard inpainting inside the sampling loop), d < horizon.
        Returns:
            (horizon, action_dim) float32 actions (or (B, horizon, action_dim)).
        """
        cfg = self.config
        with torch.inference_mode():
            nobs, batched = self._obs_tensors(obs)
            bsz = nobs["agent_pos"].shape[0]
            shape = (bsz, cfg.horizon, cfg.action_dim)
            if noise is not None:
                x = torch.as_tensor(np.asarray(noise, dtype=np.float32)).to(self.device)
                if x.dim() == 2:
                    x = x[None]
                if tuple(x.shape) != shape:
                    raise ValueError(f"noise must be {shape[1:]}. Got {tuple(x.shape)}")
            else:
                x = torch.randn(shape, generator=generator, dtype=torch.float32)
                x = x.to(self.device)
            npre = None
            if prefix is not None:
                p = torch.as_tensor(np.asarray(prefix, dtype=np.float32))
                if p.dim() == 2:
                    p = p[None].expand(bsz, -1, -1)
                if p.dim() != 3 or p.shape[2] != cfg.action_dim or not 0 < p.shape[1] < cfg.horizon:
                    raise ValueError(
                        f"prefix must be (d, {cfg.action_dim}) with 0 < d < {cfg.horizon}. "
                        f"Got {tuple(p.shape)}"
                    )
                npre = self.normalizer.normalize("action", p.to(self.device))
            gcond = self.model.encode_obs(nobs)
            nact = self.model.sample(gcond, x, self.num_inference_steps, prefix=npre)
            act = self.normalizer.unnormalize("action", nact)
            if npre is not None:
                act[:, : npre.shape[1]] = torch.as_tensor(np.asarray(prefix, dtype=np.float32)).to(act)
        out = act.cpu().numpy().astype(np.float32)
        return out if batched else out[0]

    def executable_rows(self) -> slice:
        """The rows of a chunk the robot executes: ``n_obs_steps-1 .. n_obs_steps-1+n_action_steps-1``."""
        first = self.config.n_obs_steps - 1
        return slice(first, first + self.config.n_action_steps)

    def predict_action(
        self,
        obs: dict[str, Any],
        generator: torch.Generator | None = None,
        noise: np.ndarray | torch.Tensor | None = None,
        prefix: np.ndarray | None = None,
    ) -> np.ndarray:
        """The actions to execute: rows ``n_obs_steps-1 .. n_obs_steps-1+n_action_steps-1`` of the chunk.

        Same arguments as :meth:`predict_action_chunk` (which returns all ``horizon`` rows). Row 0 of
        the result is the action for "now" (the newest observation), row k is ``k * dt`` later.
        Returns (n_action_steps, action_dim) float32 (or (B, n_action_steps, action_dim)).
        """
        chunk = self.predict_action_chunk(obs, generator=generator, noise=noise, prefix=prefix)
        return chunk[..., self.executable_rows(), :]
