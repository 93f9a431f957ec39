"""NumPy reference side of ``derive``: independent of the symbolic code.

Never imports SymPy. Modules:

- :mod:`derive.numeric.bptt`: hand-written BPTT for the built-in models
  (``HAND_BPTT``, ``HAND_LOSS``);
- :mod:`derive.numeric.finite_diff`: central differences, complex step, random
  directions, and ``CountingLoss`` to count forward passes;
- :mod:`derive.numeric.compare`: entry-by-entry gradient comparison and its table;
- :mod:`derive.numeric.random_data`: reproducible random parameters and inputs;
- :mod:`derive.numeric.shapes`: sizes and shape checks of the Elman inputs.
"""

from .bptt import (
    HAND_BPTT,
    HAND_LOSS,
    elman_regression_loss,
    elman_regression_loss_and_gradients,
    elman_softmax_loss,
    elman_softmax_loss_and_gradients,
)
from .compare import GradientComparison, compare_gradients, format_table
from .finite_diff import (
    CentralEstimates,
    CountingLoss,
    DirectionCheck,
    central_difference,
    central_difference_estimates,
    central_difference_step,
    complex_step,
    random_direction_check,
    random_directions,
)
from .random_data import random_classes, random_inputs, random_params
from .shapes import elman_param_shapes

__all__ = [
    "HAND_BPTT",
    "HAND_LOSS",
    "CentralEstimates",
    "CountingLoss",
    "DirectionCheck",
    "GradientComparison",
    "central_difference",
    "central_difference_estimates",
    "central_difference_step",
    "compare_gradients",
    "complex_step",
    "elman_param_shapes",
    "elman_regression_loss",
    "elman_regression_loss_and_gradients",
    "elman_softmax_loss",
    "elman_softmax_loss_and_gradients",
    "format_table",
    "random_classes",
    "random_direction_check",
    "random_directions",
    "random_inputs",
    "random_params",
]
