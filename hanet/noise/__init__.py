"""Estimator-noise simulator: ground-truth joints in, realistic pose-estimator output out.

Real single-view estimators do not add white noise. Measured against a multi-view reference, their
error has four parts, and the simulator reproduces each:

* a **fixed per-joint offset** (the estimator's idea of where a joint sits differs from the
  marker's): about ``0.025 x body height`` per joint, constant over a sequence, random direction;
* **temporal jitter** that is strongly correlated from frame to frame: an AR(1) process whose
  lag-1 correlation is about 0.8 at 60 fps. The coefficient is derived from the frame rate
  (``rho = 0.8 ** (60 / fps)``, about 0.64 at 30 fps) so the correlation *time* stays constant
  whatever the rate;
* **outliers**: 1-2 % of the joint-frames, in short bursts, land about ``0.3 x body height`` away
  (the detector latched onto the other limb or the background);
* optional **left/right swaps** of one layout flip pair for a few frames, and optional **dropped**
  joints or whole frames (marked missing; the prediction there is NaN).

Errors also differ by joint (wrists and ankles are worse than shoulders) and by sequence (blur,
occlusion, clothing), which is what gives real estimators their heavy-tailed error distribution;
``NoiseConfig.joint_weights`` and ``NoiseConfig.sequence_sigma`` model that. ``strength`` scales the
offset and the jitter together.

Three entry points: :func:`~hanet.noise.positions.simulate_3d` works in metres;
:func:`~hanet.noise.cameras.simulate_2d` projects the 3D
ground truth through a pinhole camera and applies the same model in pixels, scaled by the projected
body height; :func:`simulate_rotations` applies it to SMPL-style local joint rotations (fixed
per-joint rotation offsets, AR(1) rotation jitter, outlier bursts of wrong rotations, per-joint
weights; :class:`RotationNoiseConfig`, angles in degrees), so that the position error follows
from forward kinematics as an SMPL regressor's does.

:class:`NoiseConfig`'s defaults (``strength`` 1) describe the measured estimator;
:data:`DEFAULT_3D` is calibrated on the H36M FCN input statistics (MPJPE 54.6 mm, accel
19.2 mm/frame^2 at 50 fps) and :data:`DEFAULT_2D` on SimpleBaseline's input PCK on Sub-JHMDB
(57.3 / 81.6 / 93.9 % at alpha 0.05 / 0.1 / 0.2); :data:`DEFAULT_SMPL` on PARE's SMPL input
errors on 3DPW (MPJPE 80.44 mm, accel 26.77 mm/frame^2 at 30 fps, of the FK joints).

Everything is numpy (and scipy's ``Rotation`` for the rotation model) and draws only from the
``np.random.Generator`` passed in, so a seed reproduces the output exactly.
"""
